/*
 * The notify protocol without libsystemd: the whole of it is one sendto() of a text datagram.
 * The socket's name is a filesystem path, or an abstract name when it starts with '@'.
 */
#include "core/notify.h"
#include "core/log.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_addr_len;
static uint64_t watchdog_ms;

static uint64_t parse_u64(const char *s)
{
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    return *end || errno ? 0 : (uint64_t)v;
}

bool notify_init(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    uint64_t usec = parse_u64(getenv("WATCHDOG_USEC"));
    uint64_t pid = parse_u64(getenv("WATCHDOG_PID"));
    /* the period is ours unless it names another process (a wrapper that exec'd us keeps it) */
    watchdog_ms = usec && (!pid || pid == (uint64_t)getpid()) ? (usec + 999) / 1000 : 0;
    size_t n = path ? strlen(path) : 0;
    if (n < 2 || n >= sizeof(notify_addr.sun_path) || (path[0] != '/' && path[0] != '@')) {
        if (n)
            log_fields(LOG_WARN, "NOTIFY_SOCKET is not a socket path: not notifying", "path", path, NULL);
        return false;
    }
    memset(&notify_addr, 0, sizeof(notify_addr));
    notify_addr.sun_family = AF_UNIX;
    memcpy(notify_addr.sun_path, path, n);
    if (path[0] == '@')
        notify_addr.sun_path[0] = '\0'; /* abstract namespace: the length, not a NUL, ends it */
    notify_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (notify_fd < 0) {
        log_fields(LOG_WARN, "cannot open the notify socket", "error", strerror(errno), NULL);
        return false;
    }
    return true;
}

bool notify_send(const char *msg)
{
    if (notify_fd < 0)
        return false;
    ssize_t n =
        sendto(notify_fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&notify_addr, notify_addr_len);
    if (n < 0) {
        log_fields(LOG_WARN, "notify datagram not sent", "error", strerror(errno), NULL);
        return false;
    }
    return true;
}

uint64_t notify_watchdog_ms(void)
{
    return notify_fd >= 0 ? watchdog_ms : 0;
}

void notify_close(void)
{
    if (notify_fd >= 0)
        close(notify_fd);
    notify_fd = -1;
}
