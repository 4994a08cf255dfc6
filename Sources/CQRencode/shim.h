#ifndef PARLEY_CQRENCODE_SHIM_H
#define PARLEY_CQRENCODE_SHIM_H
#include <errno.h>
#include <qrencode.h>

// Swift 6 does not import C macros or `errno` (a macro over a function on glibc): wrap what ParleyQR uses.

/// The largest QR version libqrencode supports (QRSPEC_VERSION_MAX, 40).
static inline int parley_qr_version_max(void) { return QRSPEC_VERSION_MAX; }

/// errno right after a failed QRcode_encodeData: EINVAL (bad input), ERANGE (payload too large), ENOMEM.
static inline int parley_qr_errno(void) { return errno; }
static inline void parley_qr_clear_errno(void) { errno = 0; }
static inline int parley_qr_erange(void) { return ERANGE; }
static inline int parley_qr_einval(void) { return EINVAL; }

#endif
