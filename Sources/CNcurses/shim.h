#ifndef PARLEY_CNCURSES_SHIM_H
#define PARLEY_CNCURSES_SHIM_H
// Wide-character curses. SwiftPM drops pkg-config's -D_XOPEN_SOURCE=600, which hides cchar_t and the
// *_wch functions, so the two switches are defined here before the header (see BUILD-NOTES.md).
#define NCURSES_WIDECHAR 1
#define _XOPEN_SOURCE_EXTENDED 1
#include <locale.h>
#include <wchar.h>
#include <ncursesw/curses.h>

// Swift 6 imports neither C globals like stdscr nor function-like macros: wrap what ParleyTUI uses.
static inline WINDOW *parley_stdscr(void) { return stdscr; }
static inline WINDOW *parley_stdscr_for_redraw(void) { return curscr; }
static inline int parley_lines(void) { return LINES; }
static inline int parley_cols(void) { return COLS; }
static inline int parley_colors(void) { return COLORS; }
static inline int parley_color_pairs(void) { return COLOR_PAIRS; }
static inline attr_t parley_color_pair(int n) { return (attr_t)COLOR_PAIR(n); }
static inline attr_t parley_a_bold(void) { return A_BOLD; }
static inline attr_t parley_a_dim(void) { return A_DIM; }
static inline attr_t parley_a_underline(void) { return A_UNDERLINE; }
static inline attr_t parley_a_reverse(void) { return A_REVERSE; }
static inline attr_t parley_a_italic(void) { return A_ITALIC; }
static inline attr_t parley_a_normal(void) { return A_NORMAL; }
static inline int parley_key_code_yes(void) { return KEY_CODE_YES; }
static inline int parley_err(void) { return ERR; }
static inline mmask_t parley_button4_pressed(void) { return BUTTON4_PRESSED; }
static inline mmask_t parley_button5_pressed(void) { return BUTTON5_PRESSED; }
static inline mmask_t parley_button1_clicked(void) { return BUTTON1_CLICKED | BUTTON1_PRESSED | BUTTON1_RELEASED; }
static inline void parley_set_escdelay(int ms) { set_escdelay(ms); }

/// Draws one grapheme cluster (a spacing character and up to CCHAR_MAX-1 combining marks) at (y, x).
static inline int parley_put_cluster(int y, int x, const wchar_t *text, attr_t attrs, short pair) {
    cchar_t cell;
    if (setcchar(&cell, text, attrs, pair, NULL) == ERR) return ERR;
    return mvadd_wch(y, x, &cell);
}

// glibc declares wcwidth only under _XOPEN_SOURCE, which the libc module was not built with.
extern int wcwidth(wchar_t c);
static inline int parley_wcwidth(unsigned int c) { return wcwidth((wchar_t)c); }
#endif
