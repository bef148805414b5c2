/*
 * faultmod: a PKCS#11 module for tests that forwards to a real module and injects faults.
 *
 * It exports only C_GetFunctionList (so callers that prefer C_GetInterface fall back to it),
 * dlopens the real module, copies its CK_FUNCTION_LIST and replaces the entries listed in
 * `functions[]` below with wrappers. Every other entry goes straight to the real module.
 *
 * Build: cc -shared -fPIC -O1 -I/usr/include/p11-kit-1 -o faultmod.so faultmod.c -ldl -lpthread
 *
 * Environment (read once, at the first C_GetFunctionList or C_Initialize of the process; a
 * malformed value is reported on stderr and makes C_Initialize return CKR_ARGUMENTS_BAD, so a
 * typo in a test cannot pass as "no fault"):
 *
 *   FAULT_REAL_MODULE  path of the real module (default /usr/lib/softhsm/libsofthsm2.so).
 *
 *   FAULT_RULES        comma-separated FUNCTION:CALLS:CODE. On the matching calls of FUNCTION the
 *                      wrapper returns CODE instead of forwarding. CALLS counts that function's
 *                      calls in this process, 1-based, faulted calls included: "3" (third call
 *                      only), "2-" (second and every later call), "2-4" (second to fourth).
 *                      FUNCTION: any wrapped function (see functions[]), e.g. C_Sign,
 *                      C_SignInit, C_OpenSession, C_Login, C_FindObjectsInit,
 *                      C_GetAttributeValue, C_GetTokenInfo, C_GetSlotList, C_Initialize.
 *                      CODE: a CKR_ name from codes[] or a number ("0x30", "48").
 *                      Example: FAULT_RULES=C_Sign:1:CKR_SESSION_HANDLE_INVALID,C_OpenSession:3-:CKR_SESSION_COUNT
 *                      A C_Sign, C_SignUpdate or C_SignFinal that does not reach the real module
 *                      (rule, removal, stale session) also ends the real module's signing
 *                      operation, as a token ends it when the call fails (PKCS#11 5.12), so the
 *                      session can start the next signature.
 *
 *   FAULT_DELAY_US     comma-separated FUNCTION:MICROSECONDS: sleep that long before every call
 *                      of FUNCTION (a slow network HSM). Example: FAULT_DELAY_US=C_Sign:20000
 *
 *   FAULT_GATHER       comma-separated FUNCTION:N:TIMEOUT_US: a call of FUNCTION waits (before
 *                      its delay) until N calls of it are in progress at once; then every waiting
 *                      call goes on and later calls no longer wait. If TIMEOUT_US passes first,
 *                      the waiting calls go on and the gate stays open too (one timeout per
 *                      process at most). It proves overlap without depending on timing: a caller
 *                      that makes N calls at the same time always reaches "FUNCTION.peak N"
 *                      (see FAULT_COUNT_FILE), one that makes them one after another never does.
 *                      Example: FAULT_GATHER=C_Sign:8:10000000
 *
 *   FAULT_COUNT_FILE   path: after every wrapped call, the file is replaced (write to
 *                      PATH.tmp.PID, rename) by lines "FUNCTION COUNT" for each wrapped function
 *                      called so far in this process, e.g. "C_Login 1". Written on every call
 *                      because the provider never calls C_Finalize (quirk no-deinit).
 *                      After the counts come lines "FUNCTION.peak N": the most calls of FUNCTION
 *                      that were in progress at once in this process (entered the wrapper, its
 *                      delay included, and not yet returned), e.g. "C_Sign.peak 16" when 16
 *                      threads signed at the same time. A peak above 1 proves that calls
 *                      overlapped, without measuring time.
 *
 *   FAULT_TOKEN_FLAGS  flags ORed into CK_TOKEN_INFO.flags by C_GetTokenInfo, separated by ',',
 *                      '+' or '|': CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_LOCKED,
 *                      CKF_USER_PIN_COUNT_LOW, CKF_PROTECTED_AUTHENTICATION_PATH, or a number.
 *                      Example: FAULT_TOKEN_FLAGS=+CKF_USER_PIN_FINAL_TRY
 *
 *   FAULT_UTC_TIME     text written into CK_TOKEN_INFO.utcTime (NUL-padded to 16 bytes) by
 *                      C_GetTokenInfo, which also sets CKF_CLOCK_ON_TOKEN. Example:
 *                      FAULT_UTC_TIME=00:53:13, what opencryptoki 3.8 (Debian 12) reports
 *                      instead of YYYYMMDDhhmmss00.
 *
 *   FAULT_PROTECTED_PIN  with CKF_PROTECTED_AUTHENTICATION_PATH in FAULT_TOKEN_FLAGS, C_Login
 *                      with pPin == NULL logs in with this PIN (the "PIN pad"); a C_Login with a
 *                      PIN returns CKR_ARGUMENTS_BAD, so a test proves the caller sent NULL.
 *                      Unset: a NULL-PIN login returns CKR_PIN_INCORRECT.
 *
 *   FAULT_REMOVED_FILE path: while this file exists the token is "removed": C_GetSlotList with
 *                      tokenPresent = TRUE lists no slot, C_GetSlotInfo clears CKF_TOKEN_PRESENT,
 *                      C_GetTokenInfo and C_GetMechanism* return CKR_TOKEN_NOT_PRESENT, and every
 *                      wrapped session, object and signing call returns CKR_DEVICE_REMOVED
 *                      (C_CloseSession/C_CloseAllSessions still forward, to free the real
 *                      session). Every slot of the real module counts as one token. Once the file
 *                      is gone the token is "re-inserted": calls forward again, except that a
 *                      session opened before the removal gets CKR_SESSION_HANDLE_INVALID.
 *                      Removal is noticed by the first wrapped call that sees the file.
 *
 *   FAULT_REMOVAL_LOGOUT  "1": at re-insertion, also close every real session
 *                      (C_CloseAllSessions on each slot), so the real token forgets the login,
 *                      as a real token that was unplugged does.
 *
 * Thread safety: one mutex guards the counters, the session table and the removal state; the
 * configuration is written once (pthread_once) and only read afterwards. Delays sleep outside
 * the mutex; a FAULT_GATHER wait releases it (condition variable). Calls into the real module are made outside the mutex, except the
 * C_CloseAllSessions of a re-insertion.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define DEFAULT_REAL_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define MAX_RULES 64
#define MAX_SESSIONS 4096

enum fn_id {
    F_INITIALIZE,
    F_FINALIZE,
    F_GET_INFO,
    F_GET_SLOT_LIST,
    F_GET_SLOT_INFO,
    F_GET_TOKEN_INFO,
    F_GET_MECHANISM_LIST,
    F_GET_MECHANISM_INFO,
    F_OPEN_SESSION,
    F_CLOSE_SESSION,
    F_CLOSE_ALL_SESSIONS,
    F_GET_SESSION_INFO,
    F_LOGIN,
    F_LOGOUT,
    F_COPY_OBJECT,
    F_GET_ATTRIBUTE_VALUE,
    F_FIND_OBJECTS_INIT,
    F_FIND_OBJECTS,
    F_FIND_OBJECTS_FINAL,
    F_SIGN_INIT,
    F_SIGN,
    F_SIGN_UPDATE,
    F_SIGN_FINAL,
    F_COUNT
};

/* Names of the wrapped functions, indexed by enum fn_id. */
static const char *const functions[F_COUNT] = {
    "C_Initialize",        "C_Finalize",         "C_GetInfo",
    "C_GetSlotList",       "C_GetSlotInfo",      "C_GetTokenInfo",
    "C_GetMechanismList",  "C_GetMechanismInfo", "C_OpenSession",
    "C_CloseSession",      "C_CloseAllSessions", "C_GetSessionInfo",
    "C_Login",             "C_Logout",           "C_CopyObject",
    "C_GetAttributeValue", "C_FindObjectsInit",  "C_FindObjects",
    "C_FindObjectsFinal",  "C_SignInit",         "C_Sign",
    "C_SignUpdate",        "C_SignFinal",
};

struct named_value {
    const char *name;
    unsigned long value;
};

static const struct named_value codes[] = {
    {"CKR_OK", CKR_OK},
    {"CKR_GENERAL_ERROR", CKR_GENERAL_ERROR},
    {"CKR_FUNCTION_FAILED", CKR_FUNCTION_FAILED},
    {"CKR_ARGUMENTS_BAD", CKR_ARGUMENTS_BAD},
    {"CKR_DEVICE_ERROR", CKR_DEVICE_ERROR},
    {"CKR_DEVICE_MEMORY", CKR_DEVICE_MEMORY},
    {"CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED},
    {"CKR_KEY_HANDLE_INVALID", CKR_KEY_HANDLE_INVALID},
    {"CKR_OBJECT_HANDLE_INVALID", CKR_OBJECT_HANDLE_INVALID},
    {"CKR_OPERATION_ACTIVE", CKR_OPERATION_ACTIVE},
    {"CKR_PIN_INCORRECT", CKR_PIN_INCORRECT},
    {"CKR_PIN_LOCKED", CKR_PIN_LOCKED},
    {"CKR_SESSION_CLOSED", CKR_SESSION_CLOSED},
    {"CKR_SESSION_COUNT", CKR_SESSION_COUNT},
    {"CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID},
    {"CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT},
    {"CKR_USER_NOT_LOGGED_IN", CKR_USER_NOT_LOGGED_IN},
    {"CKR_CRYPTOKI_NOT_INITIALIZED", CKR_CRYPTOKI_NOT_INITIALIZED},
    {NULL, 0},
};

static const struct named_value token_flags[] = {
    {"CKF_USER_PIN_FINAL_TRY", CKF_USER_PIN_FINAL_TRY},
    {"CKF_USER_PIN_LOCKED", CKF_USER_PIN_LOCKED},
    {"CKF_USER_PIN_COUNT_LOW", CKF_USER_PIN_COUNT_LOW},
    {"CKF_PROTECTED_AUTHENTICATION_PATH", CKF_PROTECTED_AUTHENTICATION_PATH},
    {NULL, 0},
};

struct rule {
    enum fn_id fn;
    unsigned long first, last; /* last == 0: no upper bound */
    CK_RV rv;
};

struct session {
    CK_SESSION_HANDLE handle;
    CK_SLOT_ID slot;
    unsigned long epoch; /* removal epoch the session was opened in */
};

/* Configuration: written once by parse_config, read-only afterwards. */
static struct {
    int bad; /* a variable did not parse */
    struct rule rules[MAX_RULES];
    size_t nrules;
    unsigned long delay_us[F_COUNT];
    unsigned long gather_n[F_COUNT];  /* 0: no gate */
    unsigned long gather_us[F_COUNT];
    const char *count_file;
    CK_FLAGS token_flags;
    const char *protected_pin;
    const char *removed_file;
    int removal_logout;
    char *utc_time;
} config;

/* Mutable state, under `lock`. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long calls[F_COUNT];
static unsigned long active[F_COUNT]; /* calls in progress now */
static unsigned long peak[F_COUNT];   /* most calls in progress at once */
static int gather_open[F_COUNT];      /* the FAULT_GATHER gate of the function opened */
static pthread_cond_t gathered = PTHREAD_COND_INITIALIZER;
static struct session sessions[MAX_SESSIONS];
static size_t nsessions;
static int removed;          /* the token is out */
static unsigned long epoch;  /* bumped at every removal */

static pthread_once_t config_once = PTHREAD_ONCE_INIT;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static CK_FUNCTION_LIST_PTR real;
static CK_FUNCTION_LIST wrapped;

/* ---------------------------------------------------------------------------------------- */
/* Configuration                                                                            */
/* ---------------------------------------------------------------------------------------- */

static void complain(const char *variable, const char *item)
{
    fprintf(stderr, "faultmod: cannot parse %s item '%s'\n", variable, item);
    config.bad = 1;
}

static int lookup_function(const char *name)
{
    for (int i = 0; i < F_COUNT; i++)
        if (strcmp(functions[i], name) == 0)
            return i;
    return -1;
}

/* A name from `table` or a number (decimal, or hex with 0x); returns 0 on failure. */
static int parse_value(const struct named_value *table, const char *text, unsigned long *out)
{
    char *end;

    for (const struct named_value *entry = table; entry->name != NULL; entry++) {
        if (strcmp(entry->name, text) == 0) {
            *out = entry->value;
            return 1;
        }
    }
    if (*text == '\0')
        return 0;
    errno = 0;
    *out = strtoul(text, &end, 0);
    return errno == 0 && *end == '\0';
}

/* "N", "N-" or "N-M" with 1 <= N <= M. */
static int parse_range(const char *text, unsigned long *first, unsigned long *last)
{
    char *end;

    errno = 0;
    *first = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *first == 0)
        return 0;
    if (*end == '\0') {
        *last = *first;
        return 1;
    }
    if (*end != '-')
        return 0;
    text = end + 1;
    if (*text == '\0') {
        *last = 0;
        return 1;
    }
    *last = strtoul(text, &end, 10);
    return errno == 0 && end != text && *end == '\0' && *last >= *first;
}

static void parse_rules(char *text)
{
    char *save = NULL;

    for (char *item = strtok_r(text, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        char *name = item, *range = strchr(item, ':'), *code, original[256];
        struct rule *rule = &config.rules[config.nrules];
        unsigned long rv;
        int fn;

        snprintf(original, sizeof(original), "%s", item);
        if (range == NULL || (code = strchr(range + 1, ':')) == NULL) {
            complain("FAULT_RULES", item);
            continue;
        }
        *range++ = '\0';
        *code++ = '\0';
        fn = lookup_function(name);
        if (fn < 0 || config.nrules == MAX_RULES || !parse_range(range, &rule->first, &rule->last)
            || !parse_value(codes, code, &rv)) {
            complain("FAULT_RULES", original);
            continue;
        }
        rule->fn = (enum fn_id)fn;
        rule->rv = rv;
        config.nrules++;
    }
}

static void parse_delays(char *text)
{
    char *save = NULL;

    for (char *item = strtok_r(text, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        char *value = strchr(item, ':'), *end;
        int fn;

        if (value == NULL) {
            complain("FAULT_DELAY_US", item);
            continue;
        }
        *value++ = '\0';
        fn = lookup_function(item);
        errno = 0;
        unsigned long us = strtoul(value, &end, 10);
        if (fn < 0 || errno != 0 || end == value || *end != '\0') {
            complain("FAULT_DELAY_US", item);
            continue;
        }
        config.delay_us[fn] = us;
    }
}

static void parse_gather(char *text)
{
    char *save = NULL;

    for (char *item = strtok_r(text, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        char *count = strchr(item, ':'), *timeout, *end1, *end2, original[256];
        unsigned long n, us;
        int fn;

        snprintf(original, sizeof(original), "%s", item);
        if (count == NULL || (timeout = strchr(count + 1, ':')) == NULL) {
            complain("FAULT_GATHER", original);
            continue;
        }
        *count++ = '\0';
        *timeout++ = '\0';
        fn = lookup_function(item);
        errno = 0;
        n = strtoul(count, &end1, 10);
        us = strtoul(timeout, &end2, 10);
        if (fn < 0 || errno != 0 || end1 == count || *end1 != '\0' || end2 == timeout
            || *end2 != '\0' || n < 2 || us == 0) {
            complain("FAULT_GATHER", original);
            continue;
        }
        config.gather_n[fn] = n;
        config.gather_us[fn] = us;
    }
}

static void parse_token_flags(char *text)
{
    char *save = NULL;

    for (char *item = strtok_r(text, ",+| ", &save); item != NULL;
         item = strtok_r(NULL, ",+| ", &save)) {
        unsigned long flag;

        if (!parse_value(token_flags, item, &flag)) {
            complain("FAULT_TOKEN_FLAGS", item);
            continue;
        }
        config.token_flags |= flag;
    }
}

/* A private, writable copy of an environment variable, or NULL when it is unset or empty. */
static char *env_copy(const char *name)
{
    const char *value = getenv(name);
    return value == NULL || *value == '\0' ? NULL : strdup(value);
}

static void parse_config(void)
{
    char *text;

    /* The parsers keep nothing of the text they cut up (memory checkers see no leak). */
    if ((text = env_copy("FAULT_RULES")) != NULL)
        parse_rules(text);
    free(text);
    if ((text = env_copy("FAULT_DELAY_US")) != NULL)
        parse_delays(text);
    free(text);
    if ((text = env_copy("FAULT_GATHER")) != NULL)
        parse_gather(text);
    free(text);
    if ((text = env_copy("FAULT_TOKEN_FLAGS")) != NULL)
        parse_token_flags(text);
    free(text);
    config.count_file = env_copy("FAULT_COUNT_FILE");
    config.protected_pin = env_copy("FAULT_PROTECTED_PIN");
    config.removed_file = env_copy("FAULT_REMOVED_FILE");
    text = getenv("FAULT_REMOVAL_LOGOUT");
    config.removal_logout = text != NULL && strcmp(text, "1") == 0;
    config.utc_time = env_copy("FAULT_UTC_TIME");
}

/* ---------------------------------------------------------------------------------------- */
/* Counting, rules, delays                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* Replaces the count file; called with `lock` held. */
static void write_counts(void)
{
    char tmp[4096];
    FILE *out;

    if (config.count_file == NULL)
        return;
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", config.count_file, (long)getpid());
    out = fopen(tmp, "w");
    if (out == NULL)
        return;
    for (int i = 0; i < F_COUNT; i++)
        if (calls[i] > 0)
            fprintf(out, "%s %lu\n", functions[i], calls[i]);
    for (int i = 0; i < F_COUNT; i++)
        if (peak[i] > 0)
            fprintf(out, "%s.peak %lu\n", functions[i], peak[i]);
    if (fclose(out) == 0)
        rename(tmp, config.count_file);
    else
        unlink(tmp);
}

/* The FAULT_GATHER gate of `fn`; called with `lock` held, just after the call was counted. */
static void gather(enum fn_id fn)
{
    struct timespec until;

    if (config.gather_n[fn] == 0 || gather_open[fn])
        return;
    if (active[fn] >= config.gather_n[fn]) {
        gather_open[fn] = 1;
        pthread_cond_broadcast(&gathered);
        return;
    }
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(config.gather_us[fn] / 1000000);
    until.tv_nsec += (long)(config.gather_us[fn] % 1000000) * 1000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    while (!gather_open[fn]) {
        if (pthread_cond_timedwait(&gathered, &lock, &until) == ETIMEDOUT) {
            /* Given up: the gate opens for good, so a failing test waits once, not per call. */
            gather_open[fn] = 1;
            pthread_cond_broadcast(&gathered);
        }
    }
}

/*
 * Counts a call of `fn` (and one more call of it in progress: the wrapper must end with
 * leave()), sleeps its delay, and returns 1 with *rv set when a rule replaces the call; 0 means
 * "forward".
 */
static int injected(enum fn_id fn, CK_RV *rv)
{
    unsigned long n, us = config.delay_us[fn];
    int hit = 0;

    pthread_mutex_lock(&lock);
    n = ++calls[fn];
    if (++active[fn] > peak[fn])
        peak[fn] = active[fn];
    for (size_t i = 0; i < config.nrules; i++) {
        const struct rule *rule = &config.rules[i];
        if (rule->fn == fn && n >= rule->first && (rule->last == 0 || n <= rule->last)) {
            *rv = rule->rv;
            hit = 1;
            break;
        }
    }
    write_counts();
    gather(fn);
    pthread_mutex_unlock(&lock);
    if (us > 0) {
        struct timespec pause = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
        while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
            ;
    }
    return hit;
}

/* Ends a call of `fn` that injected() counted; returns `rv`, the call's result. */
static CK_RV leave(enum fn_id fn, CK_RV rv)
{
    pthread_mutex_lock(&lock);
    active[fn]--;
    pthread_mutex_unlock(&lock);
    return rv;
}

/* ---------------------------------------------------------------------------------------- */
/* Removal simulation and the session table                                                  */
/* ---------------------------------------------------------------------------------------- */

/* Closes every real session so that the real token forgets the login. */
static void close_all_real_sessions(void)
{
    CK_SLOT_ID slots[64];
    CK_ULONG count = 64;

    if (real->C_GetSlotList(CK_FALSE, slots, &count) != CKR_OK)
        return;
    for (CK_ULONG i = 0; i < count; i++)
        real->C_CloseAllSessions(slots[i]);
}

/* True while the token is out; notices removal and re-insertion. */
static int token_removed(void)
{
    struct stat st;
    int exists, out;

    if (config.removed_file == NULL)
        return 0;
    exists = stat(config.removed_file, &st) == 0;
    pthread_mutex_lock(&lock);
    if (exists && !removed) {
        removed = 1;
        epoch++;
    } else if (!exists && removed) {
        removed = 0;
        if (config.removal_logout) {
            close_all_real_sessions();
            nsessions = 0;
        }
    }
    out = removed;
    pthread_mutex_unlock(&lock);
    return out;
}

static void remember_session(CK_SESSION_HANDLE handle, CK_SLOT_ID slot)
{
    pthread_mutex_lock(&lock);
    if (nsessions < MAX_SESSIONS) {
        sessions[nsessions].handle = handle;
        sessions[nsessions].slot = slot;
        sessions[nsessions].epoch = epoch;
        nsessions++;
    }
    pthread_mutex_unlock(&lock);
}

static void forget_session(CK_SESSION_HANDLE handle)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nsessions; i++) {
        if (sessions[i].handle == handle) {
            sessions[i] = sessions[--nsessions];
            break;
        }
    }
    pthread_mutex_unlock(&lock);
}

static void forget_slot_sessions(CK_SLOT_ID slot)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nsessions;) {
        if (sessions[i].slot == slot)
            sessions[i] = sessions[--nsessions];
        else
            i++;
    }
    pthread_mutex_unlock(&lock);
}

/* True for a session opened before the last removal. */
static int session_stale(CK_SESSION_HANDLE handle)
{
    int stale = 0;

    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nsessions; i++) {
        if (sessions[i].handle == handle) {
            stale = sessions[i].epoch != epoch;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    return stale;
}

/*
 * The common prologue of a call on a session: count it, apply a rule, then the removal state.
 * Returns 1 with *rv set when the call must not be forwarded.
 */
static int session_call_blocked(enum fn_id fn, CK_SESSION_HANDLE session, CK_RV *rv)
{
    if (injected(fn, rv))
        return 1;
    if (token_removed()) {
        *rv = CKR_DEVICE_REMOVED;
        return 1;
    }
    if (session_stale(session)) {
        *rv = CKR_SESSION_HANDLE_INVALID;
        return 1;
    }
    return 0;
}

/* Prologue of a call about a token (not a session): rules, then "token not present". */
static int token_call_blocked(enum fn_id fn, CK_RV *rv)
{
    if (injected(fn, rv))
        return 1;
    if (token_removed()) {
        *rv = CKR_TOKEN_NOT_PRESENT;
        return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Wrappers                                                                                 */
/* ---------------------------------------------------------------------------------------- */

/*
 * Every wrapper returns through leave(F_..., rv) once injected() has counted the call, so each
 * call counted as in progress is ended, whatever the path.
 */

static CK_RV w_Initialize(void *args)
{
    CK_RV rv;

    pthread_once(&config_once, parse_config);
    if (config.bad)
        return CKR_ARGUMENTS_BAD;
    if (!injected(F_INITIALIZE, &rv))
        rv = real->C_Initialize(args);
    return leave(F_INITIALIZE, rv);
}

static CK_RV w_Finalize(void *reserved)
{
    CK_RV rv;

    if (!injected(F_FINALIZE, &rv)) {
        rv = real->C_Finalize(reserved);
        if (rv == CKR_OK) {
            pthread_mutex_lock(&lock);
            nsessions = 0;
            pthread_mutex_unlock(&lock);
        }
    }
    return leave(F_FINALIZE, rv);
}

static CK_RV w_GetInfo(CK_INFO_PTR info)
{
    CK_RV rv;

    if (!injected(F_GET_INFO, &rv))
        rv = real->C_GetInfo(info);
    return leave(F_GET_INFO, rv);
}

static CK_RV w_GetSlotList(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
    CK_RV rv;

    if (!injected(F_GET_SLOT_LIST, &rv)) {
        if (!token_present || !token_removed()) {
            rv = real->C_GetSlotList(token_present, list, count);
        } else if (count == NULL) {
            rv = CKR_ARGUMENTS_BAD;
        } else {
            *count = 0;
            rv = CKR_OK;
        }
    }
    return leave(F_GET_SLOT_LIST, rv);
}

static CK_RV w_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
    CK_RV rv;

    if (!injected(F_GET_SLOT_INFO, &rv)) {
        rv = real->C_GetSlotInfo(slot, info);
        if (rv == CKR_OK && token_removed())
            info->flags &= ~CKF_TOKEN_PRESENT;
    }
    return leave(F_GET_SLOT_INFO, rv);
}

static CK_RV w_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    CK_RV rv;

    if (!token_call_blocked(F_GET_TOKEN_INFO, &rv)) {
        rv = real->C_GetTokenInfo(slot, info);
        if (rv == CKR_OK)
            info->flags |= config.token_flags;
        if (rv == CKR_OK && config.utc_time != NULL) {
            size_t len = strlen(config.utc_time);
            memset(info->utcTime, 0, sizeof info->utcTime);
            memcpy(info->utcTime, config.utc_time,
                   len < sizeof info->utcTime ? len : sizeof info->utcTime);
            info->flags |= CKF_CLOCK_ON_TOKEN;
        }
    }
    return leave(F_GET_TOKEN_INFO, rv);
}

static CK_RV w_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
    CK_RV rv;

    if (!token_call_blocked(F_GET_MECHANISM_LIST, &rv))
        rv = real->C_GetMechanismList(slot, list, count);
    return leave(F_GET_MECHANISM_LIST, rv);
}

static CK_RV w_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
    CK_RV rv;

    if (!token_call_blocked(F_GET_MECHANISM_INFO, &rv))
        rv = real->C_GetMechanismInfo(slot, type, info);
    return leave(F_GET_MECHANISM_INFO, rv);
}

static CK_RV w_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, void *application, CK_NOTIFY notify,
                           CK_SESSION_HANDLE_PTR session)
{
    CK_RV rv;

    if (!injected(F_OPEN_SESSION, &rv)) {
        if (token_removed()) {
            rv = CKR_DEVICE_REMOVED;
        } else {
            rv = real->C_OpenSession(slot, flags, application, notify, session);
            if (rv == CKR_OK && session != NULL)
                remember_session(*session, slot);
        }
    }
    return leave(F_OPEN_SESSION, rv);
}

static CK_RV w_CloseSession(CK_SESSION_HANDLE session)
{
    CK_RV rv;

    if (!injected(F_CLOSE_SESSION, &rv)) {
        forget_session(session);
        rv = real->C_CloseSession(session);
    }
    return leave(F_CLOSE_SESSION, rv);
}

static CK_RV w_CloseAllSessions(CK_SLOT_ID slot)
{
    CK_RV rv;

    if (!injected(F_CLOSE_ALL_SESSIONS, &rv)) {
        forget_slot_sessions(slot);
        rv = real->C_CloseAllSessions(slot);
    }
    return leave(F_CLOSE_ALL_SESSIONS, rv);
}

static CK_RV w_GetSessionInfo(CK_SESSION_HANDLE session, CK_SESSION_INFO_PTR info)
{
    CK_RV rv;

    if (!session_call_blocked(F_GET_SESSION_INFO, session, &rv))
        rv = real->C_GetSessionInfo(session, info);
    return leave(F_GET_SESSION_INFO, rv);
}

static CK_RV w_Login(CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin,
                     CK_ULONG pin_len)
{
    CK_RV rv;

    if (session_call_blocked(F_LOGIN, session, &rv))
        return leave(F_LOGIN, rv);
    if (!(config.token_flags & CKF_PROTECTED_AUTHENTICATION_PATH))
        rv = real->C_Login(session, user, pin, pin_len);
    else if (pin != NULL)
        rv = CKR_ARGUMENTS_BAD;
    else if (config.protected_pin == NULL)
        rv = CKR_PIN_INCORRECT;
    else
        rv = real->C_Login(session, user, (CK_UTF8CHAR_PTR)config.protected_pin,
                           (CK_ULONG)strlen(config.protected_pin));
    return leave(F_LOGIN, rv);
}

static CK_RV w_Logout(CK_SESSION_HANDLE session)
{
    CK_RV rv;

    if (!session_call_blocked(F_LOGOUT, session, &rv))
        rv = real->C_Logout(session);
    return leave(F_LOGOUT, rv);
}

static CK_RV w_CopyObject(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                          CK_ATTRIBUTE_PTR templ, CK_ULONG count, CK_OBJECT_HANDLE_PTR copy)
{
    CK_RV rv;

    if (!session_call_blocked(F_COPY_OBJECT, session, &rv))
        rv = real->C_CopyObject(session, object, templ, count, copy);
    return leave(F_COPY_OBJECT, rv);
}

static CK_RV w_GetAttributeValue(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                                 CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
    CK_RV rv;

    if (!session_call_blocked(F_GET_ATTRIBUTE_VALUE, session, &rv))
        rv = real->C_GetAttributeValue(session, object, templ, count);
    return leave(F_GET_ATTRIBUTE_VALUE, rv);
}

static CK_RV w_FindObjectsInit(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
    CK_RV rv;

    if (!session_call_blocked(F_FIND_OBJECTS_INIT, session, &rv))
        rv = real->C_FindObjectsInit(session, templ, count);
    return leave(F_FIND_OBJECTS_INIT, rv);
}

static CK_RV w_FindObjects(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE_PTR objects,
                           CK_ULONG max, CK_ULONG_PTR count)
{
    CK_RV rv;

    if (!session_call_blocked(F_FIND_OBJECTS, session, &rv))
        rv = real->C_FindObjects(session, objects, max, count);
    return leave(F_FIND_OBJECTS, rv);
}

static CK_RV w_FindObjectsFinal(CK_SESSION_HANDLE session)
{
    CK_RV rv;

    if (!session_call_blocked(F_FIND_OBJECTS_FINAL, session, &rv))
        rv = real->C_FindObjectsFinal(session);
    return leave(F_FIND_OBJECTS_FINAL, rv);
}

static CK_RV w_SignInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
    CK_RV rv;

    if (!session_call_blocked(F_SIGN_INIT, session, &rv))
        rv = real->C_SignInit(session, mechanism, key);
    return leave(F_SIGN_INIT, rv);
}

/*
 * Ends the real module's signing operation on `session` after a signing call that failed here
 * without reaching it: a token ends the operation when C_Sign, C_SignUpdate or C_SignFinal fails,
 * and the caller may start the next one on the same session. The result is thrown away.
 */
static void end_real_signing(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len)
{
    CK_BYTE scratch[8192];
    CK_ULONG len = sizeof(scratch);

    if (data != NULL)
        real->C_Sign(session, data, data_len, scratch, &len);
    else
        real->C_SignFinal(session, scratch, &len);
}

static CK_RV w_Sign(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                    CK_BYTE_PTR signature, CK_ULONG_PTR signature_len)
{
    CK_RV rv;

    if (!session_call_blocked(F_SIGN, session, &rv))
        rv = real->C_Sign(session, data, data_len, signature, signature_len);
    else
        end_real_signing(session, data, data_len);
    return leave(F_SIGN, rv);
}

static CK_RV w_SignUpdate(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len)
{
    CK_RV rv;

    if (!session_call_blocked(F_SIGN_UPDATE, session, &rv))
        rv = real->C_SignUpdate(session, part, part_len);
    else
        end_real_signing(session, NULL, 0);
    return leave(F_SIGN_UPDATE, rv);
}

static CK_RV w_SignFinal(CK_SESSION_HANDLE session, CK_BYTE_PTR signature,
                         CK_ULONG_PTR signature_len)
{
    CK_RV rv;

    if (!session_call_blocked(F_SIGN_FINAL, session, &rv))
        rv = real->C_SignFinal(session, signature, signature_len);
    else
        end_real_signing(session, NULL, 0);
    return leave(F_SIGN_FINAL, rv);
}

/* ---------------------------------------------------------------------------------------- */
/* Loading                                                                                  */
/* ---------------------------------------------------------------------------------------- */

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list);

static void load_real(void)
{
    const char *path = getenv("FAULT_REAL_MODULE");
    CK_C_GetFunctionList get_list;
    void *library;

    if (path == NULL || *path == '\0')
        path = DEFAULT_REAL_MODULE;
    library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        fprintf(stderr, "faultmod: cannot load %s: %s\n", path, dlerror());
        return;
    }
    get_list = (CK_C_GetFunctionList)dlsym(library, "C_GetFunctionList");
    if (get_list == NULL || get_list(&real) != CKR_OK || real == NULL) {
        fprintf(stderr, "faultmod: %s has no usable C_GetFunctionList\n", path);
        real = NULL;
        return;
    }
    wrapped = *real;
    wrapped.C_GetFunctionList = C_GetFunctionList;
    wrapped.C_Initialize = w_Initialize;
    wrapped.C_Finalize = w_Finalize;
    wrapped.C_GetInfo = w_GetInfo;
    wrapped.C_GetSlotList = w_GetSlotList;
    wrapped.C_GetSlotInfo = w_GetSlotInfo;
    wrapped.C_GetTokenInfo = w_GetTokenInfo;
    wrapped.C_GetMechanismList = w_GetMechanismList;
    wrapped.C_GetMechanismInfo = w_GetMechanismInfo;
    wrapped.C_OpenSession = w_OpenSession;
    wrapped.C_CloseSession = w_CloseSession;
    wrapped.C_CloseAllSessions = w_CloseAllSessions;
    wrapped.C_GetSessionInfo = w_GetSessionInfo;
    wrapped.C_Login = w_Login;
    wrapped.C_Logout = w_Logout;
    wrapped.C_CopyObject = w_CopyObject;
    wrapped.C_GetAttributeValue = w_GetAttributeValue;
    wrapped.C_FindObjectsInit = w_FindObjectsInit;
    wrapped.C_FindObjects = w_FindObjects;
    wrapped.C_FindObjectsFinal = w_FindObjectsFinal;
    wrapped.C_SignInit = w_SignInit;
    wrapped.C_Sign = w_Sign;
    wrapped.C_SignUpdate = w_SignUpdate;
    wrapped.C_SignFinal = w_SignFinal;
}

__attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
    if (list == NULL)
        return CKR_ARGUMENTS_BAD;
    pthread_once(&config_once, parse_config);
    pthread_once(&load_once, load_real);
    if (real == NULL)
        return CKR_GENERAL_ERROR;
    *list = &wrapped;
    return CKR_OK;
}
