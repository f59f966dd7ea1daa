/*
 * hsm/error.c - error strings and diagnostics of the HSM layer.
 *
 * Fixed strings for enum hsm_error (and negated errno), PKCS#11 CKR_*
 * names, and filling a caller's hsm_diag_t.  No global error state.
 */
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>

#include "hsm/internal.h"

const char *hsm_strerror(int code)
{
    switch (code) {
    case HSM_EOK: return "success";
    case HSM_EURI: return "malformed PKCS#11 URI";
    case HSM_EMODULE: return "PKCS#11 module cannot be loaded";
    case HSM_ENOTOKEN: return "no token matches the URI";
    case HSM_EAMBIGUOUS: return "more than one token or key matches";
    case HSM_EPIN: return "PIN missing or unreadable";
    case HSM_ELOGIN: return "login refused";
    case HSM_ENOKEY: return "key not found";
    case HSM_EALG: return "unsupported algorithm or key size";
    case HSM_EKEYSET: return "malformed key set";
    case HSM_ECOLLISION: return "key tag or label collides";
    case HSM_EMISMATCH: return "HSM consistency proof failed";
    case HSM_EDEVICE: return "PKCS#11 operation failed";
    case HSM_ENOHSM: return "no HSM left in rotation";
    case HSM_EUNSUPPORTED: return "not supported by this PKCS#11 stack";
    case HSM_ECRYPTO: return "OpenSSL failure";
    default: break;
    }
    if (code < 0 && code > HSM_ERROR_BASE)
        return strerror(-code);
    return "unknown error";
}

void diag_set(hsm_diag_t *diag, const char *fmt, ...)
{
    va_list ap;
    if (diag == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(diag->msg, sizeof(diag->msg), fmt, ap);
    va_end(ap);
}

void diag_openssl(hsm_diag_t *diag, const char *what)
{
    char buf[256] = "unknown OpenSSL error";
    unsigned long e = ERR_get_error();
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    diag_set(diag, "%s: %s", what, buf);
}

const char *hsm_ckr_name(CK_RV rv)
{
    switch (rv) {
#define R(x) case x: return #x;
    R(CKR_OK) R(CKR_HOST_MEMORY) R(CKR_SLOT_ID_INVALID)
    R(CKR_GENERAL_ERROR) R(CKR_FUNCTION_FAILED) R(CKR_ARGUMENTS_BAD)
    R(CKR_ATTRIBUTE_READ_ONLY) R(CKR_ATTRIBUTE_TYPE_INVALID)
    R(CKR_ATTRIBUTE_VALUE_INVALID) R(CKR_DEVICE_ERROR) R(CKR_DEVICE_REMOVED)
    R(CKR_DATA_LEN_RANGE) R(CKR_KEY_HANDLE_INVALID) R(CKR_KEY_SIZE_RANGE)
    R(CKR_KEY_TYPE_INCONSISTENT) R(CKR_KEY_FUNCTION_NOT_PERMITTED)
    R(CKR_KEY_NOT_WRAPPABLE) R(CKR_KEY_UNEXTRACTABLE)
    R(CKR_MECHANISM_INVALID) R(CKR_MECHANISM_PARAM_INVALID)
    R(CKR_OBJECT_HANDLE_INVALID) R(CKR_OPERATION_ACTIVE)
    R(CKR_OPERATION_NOT_INITIALIZED) R(CKR_PIN_INCORRECT)
    R(CKR_PIN_LOCKED) R(CKR_SESSION_CLOSED) R(CKR_SESSION_HANDLE_INVALID)
    R(CKR_SESSION_READ_ONLY) R(CKR_TEMPLATE_INCOMPLETE)
    R(CKR_TEMPLATE_INCONSISTENT) R(CKR_TOKEN_NOT_PRESENT)
    R(CKR_USER_NOT_LOGGED_IN) R(CKR_USER_ALREADY_LOGGED_IN)
    R(CKR_WRAPPED_KEY_INVALID) R(CKR_WRAPPING_KEY_HANDLE_INVALID)
    R(CKR_UNWRAPPING_KEY_HANDLE_INVALID) R(CKR_BUFFER_TOO_SMALL)
    R(CKR_CRYPTOKI_NOT_INITIALIZED) R(CKR_CRYPTOKI_ALREADY_INITIALIZED)
    R(CKR_FUNCTION_NOT_SUPPORTED) R(CKR_ENCRYPTED_DATA_INVALID)
    R(CKR_ACTION_PROHIBITED)
#undef R
    default: return "CKR_(other)";
    }
}
