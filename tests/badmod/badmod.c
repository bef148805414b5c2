/*
 * badmod: a broken PKCS#11 module for tests (issue 15, item 2). It exports C_GetFunctionList and
 * nothing else (no C_GetInterface, no other C_* symbol), and misbehaves as the environment
 * variable BADMOD_MODE says:
 *
 *   null-list     C_GetFunctionList returns CKR_OK and sets *ppFunctionList = NULL.
 *   null-entries  C_GetFunctionList returns CKR_OK and a CK_FUNCTION_LIST of version 2.40 whose
 *                 function pointers are all NULL.
 *   (other)       C_GetFunctionList returns CKR_GENERAL_ERROR and says so on stderr, so a typo
 *                 in a test cannot pass as "the module was refused".
 *
 * BADMOD_TRACE (optional): a file to which every C_GetFunctionList call appends one line
 * "C_GetFunctionList <mode>", so a test can show the module was really loaded and called.
 *
 * Build: cc -shared -fPIC -Wall -Wextra -Werror -fvisibility=hidden -I/usr/include/p11-kit-1 \
 *          -o badmod.so badmod.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#define EXPORT __attribute__((visibility("default")))

/* Static storage: every function pointer is NULL. */
static CK_FUNCTION_LIST null_entries;

static void trace(const char *mode)
{
    const char *path = getenv("BADMOD_TRACE");
    FILE *file;

    if (path == NULL || *path == '\0')
        return;
    file = fopen(path, "a");
    if (file == NULL)
        return;
    fprintf(file, "C_GetFunctionList %s\n", mode);
    fclose(file);
}

EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
    const char *mode = getenv("BADMOD_MODE");

    if (mode == NULL)
        mode = "";
    trace(mode);
    if (ppFunctionList == NULL)
        return CKR_ARGUMENTS_BAD;
    if (strcmp(mode, "null-list") == 0) {
        *ppFunctionList = NULL;
        return CKR_OK;
    }
    if (strcmp(mode, "null-entries") == 0) {
        memset(&null_entries, 0, sizeof(null_entries));
        null_entries.version.major = 2;
        null_entries.version.minor = 40;
        *ppFunctionList = &null_entries;
        return CKR_OK;
    }
    fprintf(stderr, "badmod: unknown BADMOD_MODE '%s' (expected null-list or null-entries)\n",
            mode);
    return CKR_GENERAL_ERROR;
}
