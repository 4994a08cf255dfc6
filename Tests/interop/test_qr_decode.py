"""ParleyQR's terminal renderings, decoded by an independent decoder (zxing-cpp from PyPI).

The Swift test tool `parley-qr` (Sources/ParleyQRTool) encodes a payload given as hex with libqrencode
and prints the half-block or ASCII rendering. Each rendering is rasterised here — cell by cell, as a
terminal with a light or a dark theme would paint it — and zxing-cpp must hand back the payload byte for
byte (`Barcode.bytes`, the uninterpreted byte content, so no text decoding or ECI can alter bytes ≥ 0x80).

Three ways of turning text into pixels:
  * cells: each character cell is two half-cells (half blocks) or one cell ('#' = ink, ' ' = paper),
    filled with the theme's ink or paper colour;
  * pyte: the tool's output, escape sequences included, is fed to the pyte terminal emulator and its
    screen (characters plus SGR colours) is rasterised with the theme's default colours;
  * font: the half-block lines are drawn with DejaVu Sans Mono, i.e. with real glyph shapes.

(The ASCII fallback drawn with a real font's '#' glyphs, which cover only part of their cell, is not
decoded here: zxing-cpp does not read it from a sharp image, and only sometimes from a blurred one. The
fallback is for terminals that cannot show block characters at all; it is checked cell by cell.)

A code in the right polarity for the theme (dark modules dark) must decode with zxing's inversion retry
turned off, because many phone scanners do not retry inverted.
"""
from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
import pyte
import zxingcpp
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[2]
TOOL = Path(os.environ.get("PARLEY_QR_TOOL", ROOT / ".build" / "debug" / "parley-qr"))
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")

UPPER, LOWER, FULL = "\u2580", "\u2584", "\u2588"
# Theme = (ink, paper): the terminal's default foreground and background as grey levels.
LIGHT_THEME = (0x20, 0xF0)  # dark text on a light background
DARK_THEME = (0xD0, 0x10)  # light text on a dark background
THEMES = {"light": LIGHT_THEME, "dark": DARK_THEME}
# The right mode for each theme: plain half blocks / ASCII ink the dark modules on a light terminal and
# the light modules (plus the quiet zone) on a dark one.
MODE_FOR_THEME = {"light": [], "dark": ["--light"]}
# Character cells as (width, height) in pixels: square-module ones and font-like ones (~1:2, odd heights).
CELLS = [(2, 4), (3, 6), (5, 10), (8, 17), (9, 19)]


def _payloads() -> dict[str, bytes]:
    rng = random.Random(0x9A7_1E7)
    out = {f"random{n}": rng.randbytes(n) for n in (16, 70, 200, 500)}
    # The scannable safety number (ParleyProtocol SafetyNumber.scannable, libsignal's CombinedFingerprints):
    # 08 50 12 22 0a 20 <32 bytes> 1a 22 0a 20 <32 bytes> = 74 bytes.
    out["safety_number"] = (bytes.fromhex("085012220a20") + rng.randbytes(32)
                            + bytes.fromhex("1a220a20") + rng.randbytes(32))
    # Every byte value, in an order that makes invalid UTF-8 and Shift-JIS look-alikes.
    out["all_bytes"] = bytes(range(255, -1, -1))
    return out


PAYLOADS = _payloads()
assert len(PAYLOADS["safety_number"]) == 74


@pytest.fixture(scope="session")
def tool(tmp_path_factory) -> Path:
    """The tool, copied once per run so that a concurrent `swift build` relinking it cannot break the run.
    FAILS (never skips) when it has not been built."""
    if not (TOOL.is_file() and os.access(TOOL, os.X_OK)):
        pytest.fail(f"parley-qr not found at {TOOL}: build it first with `make build` "
                    f"(or `swift build --product parley-qr`) in the repository root.", pytrace=False)
    copy = tmp_path_factory.mktemp("qr") / TOOL.name
    shutil.copy2(TOOL, copy)
    return copy


def test_tool_present(tool):
    assert tool.is_file()


def render(tool: Path, payload: bytes, *flags: str) -> tuple[list[str], int]:
    """The tool's lines (trailing spaces kept) and the symbol size it reported."""
    run = subprocess.run([str(tool), "--info", *flags, payload.hex()], capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    info = run.stderr.decode().split()  # "version V size S level L"
    assert info[0] == "version" and info[2] == "size" and info[4] == "level", info
    size = int(info[3])
    assert size == 17 + 4 * int(info[1])
    text = run.stdout.decode("utf-8")
    assert text.endswith("\n")
    return text[:-1].split("\n"), size


# --- rasterising ----------------------------------------------------------------------------------------

def raster_cells(cells: list[list[tuple[int, int]]], cell: tuple[int, int], surround: int) -> Image.Image:
    """cells[row][col] = (upper grey, lower grey); each character cell becomes cw × ch pixels, its upper
    ch // 2 pixel rows in the upper colour and the rest in the lower one. Two cells of `surround` (the
    terminal's background around the output) frame the picture, as a window would."""
    cw, ch = cell
    upper_h = ch // 2
    width = len(cells[0]) * cw
    rows = bytearray()
    for line in cells:
        assert len(line) * cw == width, "ragged lines"
        upper = bytes(b for (u, _) in line for b in (u,) * cw)
        lower = bytes(b for (_, l) in line for b in (l,) * cw)
        rows += upper * upper_h + lower * (ch - upper_h)
    image = Image.frombytes("L", (width, len(cells) * ch), bytes(rows))
    framed = Image.new("L", (image.width + 4 * cw, image.height + 4 * cw), surround)
    framed.paste(image, (2 * cw, 2 * cw))
    return framed


def half_block_cells(lines: list[str], theme: tuple[int, int]) -> list[list[tuple[int, int]]]:
    ink, paper = theme
    table = {" ": (paper, paper), UPPER: (ink, paper), LOWER: (paper, ink), FULL: (ink, ink)}
    out = []
    for line in lines:
        assert set(line) <= set(table), f"unexpected characters {set(line) - set(table)}"
        out.append([table[c] for c in line])
    return out


def ascii_cells(lines: list[str], theme: tuple[int, int]) -> list[list[tuple[int, int]]]:
    ink, paper = theme
    out = []
    for line in lines:
        assert set(line) <= {"#", " "}, f"unexpected characters {set(line) - {'#', ' '}}"
        out.append([(ink, ink) if c == "#" else (paper, paper) for c in line])
    return out


def pyte_cells(output: str, theme: tuple[int, int]) -> list[list[tuple[int, int]]]:
    """Feeds the tool's output to a pyte screen and resolves each cell's colours against the theme."""
    lines = output.split("\n")
    screen = pyte.Screen(max(len(pyte_strip(l)) for l in lines) + 2, len(lines) + 1)
    pyte.Stream(screen).feed(output.replace("\n", "\r\n"))
    named = {"black": 0x00, "white": 0xE5}  # xterm's palette entries 0 and 7

    def grey(colour: str, default: int) -> int:
        if colour == "default":
            return default
        assert colour in named, f"unexpected colour {colour}"
        return named[colour]

    ink, paper = theme
    out = []
    for y in range(len(lines)):
        row = []
        for x in range(len(pyte_strip(lines[y]))):
            char = screen.buffer[y][x]
            fg, bg = grey(char.fg, ink), grey(char.bg, paper)
            if char.reverse:
                fg, bg = bg, fg
            row.append({" ": (bg, bg), UPPER: (fg, bg), LOWER: (bg, fg), FULL: (fg, fg)}[char.data])
        out.append(row)
    return out


def pyte_strip(line: str) -> str:
    """The printable characters of a line (removes the SGR sequences the tool emits)."""
    return line.replace("\x1b[30;47m", "").replace("\x1b[0m", "")


def raster_font(lines: list[str], theme: tuple[int, int], size: int) -> Image.Image:
    """Draws the lines with DejaVu Sans Mono on a grid of its advance width × line height, like a terminal."""
    font = ImageFont.truetype(str(FONT), size)
    cw = round(font.getlength("M"))
    ascent, descent = font.getmetrics()
    ch = ascent + descent
    ink, paper = theme
    width = max(len(l) for l in lines) * cw
    image = Image.new("L", (width + 4 * cw, len(lines) * ch + 4 * cw), paper)
    draw = ImageDraw.Draw(image)
    for y, line in enumerate(lines):
        for x, c in enumerate(line):
            if c != " ":
                draw.text((2 * cw + x * cw, 2 * cw + y * ch), c, font=font, fill=ink)
    return image


# --- decoding -------------------------------------------------------------------------------------------

def decode(image: Image.Image, try_invert: bool = False) -> zxingcpp.Barcode:
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode, try_invert=try_invert,
                                   try_rotate=False, text_mode=zxingcpp.TextMode.Plain)
    assert len(found) == 1, f"expected one QR code, zxing-cpp found {len(found)}"
    return found[0]


def assert_decodes(image: Image.Image, payload: bytes, try_invert: bool = False, label: str = "") -> None:
    barcode = decode(image, try_invert)
    assert barcode.valid
    # `bytes` is the raw byte content: compare exactly, length included.
    assert barcode.bytes == payload, f"{label}: decoded {barcode.bytes.hex()} != {payload.hex()}"
    # ]Q1: QR Code model 2 with no ECI designator, i.e. plain 8-bit data that nothing re-encodes.
    assert barcode.symbology_identifier == "]Q1", barcode.symbology_identifier
    assert barcode.ec_level == "M"


# --- tests ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", PAYLOADS)
@pytest.mark.parametrize("theme", THEMES)
def test_half_blocks_decode(tool, name, theme):
    payload = PAYLOADS[name]
    lines, size = render(tool, payload, *MODE_FOR_THEME[theme])
    assert len(lines) == (size + 8 + 1) // 2 and all(len(l) == size + 8 for l in lines)
    cells = half_block_cells(lines, THEMES[theme])
    for cell in CELLS:
        assert_decodes(raster_cells(cells, cell, THEMES[theme][1]), payload, label=f"{theme} {cell}")


@pytest.mark.parametrize("name", PAYLOADS)
@pytest.mark.parametrize("theme", THEMES)
def test_ascii_decode(tool, name, theme):
    payload = PAYLOADS[name]
    lines, size = render(tool, payload, "--ascii", *MODE_FOR_THEME[theme])
    assert len(lines) == size + 8 and all(len(l) == 2 * (size + 8) for l in lines)
    cells = ascii_cells(lines, THEMES[theme])
    # An ASCII module is two cells wide and one high: cells of w × 2w give square modules.
    for cell in [(1, 2), (2, 4), (4, 8), (8, 17)]:
        assert_decodes(raster_cells(cells, cell, THEMES[theme][1]), payload, label=f"{theme} {cell}")


@pytest.mark.parametrize("name", ["random16", "safety_number", "random500"])
@pytest.mark.parametrize("theme", THEMES)
def test_wrong_mode_for_theme_is_an_inverted_code(tool, name, theme):
    """Plain text on the other kind of terminal shows the code inverted (light modules dark): zxing-cpp
    still reads it when allowed to retry inverted, which is why the polarity option exists at all."""
    payload = PAYLOADS[name]
    other = "dark" if theme == "light" else "light"
    lines, _ = render(tool, payload, *MODE_FOR_THEME[other])
    assert_decodes(raster_cells(half_block_cells(lines, THEMES[theme]), (3, 6), THEMES[theme][1]), payload,
                   try_invert=True)


@pytest.mark.parametrize("name", PAYLOADS)
@pytest.mark.parametrize("theme", THEMES)
def test_ansi_colours_decode_on_any_theme_through_pyte(tool, name, theme):
    """With --ansi both colours are explicit: the same output reads right way round on both themes."""
    payload = PAYLOADS[name]
    run = subprocess.run([str(tool), "--ansi", payload.hex()], capture_output=True, check=True, timeout=60)
    output = run.stdout.decode("utf-8").rstrip("\n")
    cells = pyte_cells(output, THEMES[theme])
    # Every cell is painted black-on-white whatever the theme's own colours are.
    assert {c for row in cells for pair in row for c in pair} <= {0x00, 0xE5}
    for cell in [(3, 6), (8, 17)]:
        assert_decodes(raster_cells(cells, cell, THEMES[theme][1]), payload, label=f"ansi on {theme} {cell}")


@pytest.mark.parametrize("name", ["random16", "safety_number", "random200", "all_bytes"])
@pytest.mark.parametrize("theme", THEMES)
def test_plain_output_through_pyte(tool, name, theme):
    """The plain half-block text for the theme, shown by a terminal emulator, as captured from its screen."""
    payload = PAYLOADS[name]
    run = subprocess.run([str(tool), *MODE_FOR_THEME[theme], payload.hex()], capture_output=True, check=True,
                         timeout=60)
    cells = pyte_cells(run.stdout.decode("utf-8").rstrip("\n"), THEMES[theme])
    assert_decodes(raster_cells(cells, (4, 8), THEMES[theme][1]), payload)


@pytest.mark.skipif(not FONT.is_file(), reason=f"{FONT} not installed (Debian fonts-dejavu-core)")
@pytest.mark.parametrize("name", PAYLOADS)
@pytest.mark.parametrize("theme", THEMES)
def test_half_blocks_drawn_with_a_real_font(tool, name, theme):
    """The glyphs' real shapes (anti-aliased edges included). Sizes are ones at which DejaVu Sans Mono's
    block glyphs tile its own advance × line-height grid: at some others (10–13, 18 px) Pillow leaves
    1-pixel seams between rows of glyphs that cut through the quiet zone and the finder patterns. Terminals
    avoid that by drawing block elements themselves (VTE, kitty, Alacritty, WezTerm, foot, iTerm2, Windows
    Terminal) or by snapping the font to the cell; the cell-by-cell tests above model that."""
    payload = PAYLOADS[name]
    lines, _ = render(tool, payload, *MODE_FOR_THEME[theme])
    for size in (16, 20, 24):
        assert_decodes(raster_font(lines, THEMES[theme], size), payload, label=f"DejaVu {size}px on {theme}")
