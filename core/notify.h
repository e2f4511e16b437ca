/*
 * The service manager's notify protocol (sd_notify(3)): one datagram of "KEY=VALUE" lines to
 * the AF_UNIX socket named by $NOTIFY_SOCKET. With no such variable every call does nothing,
 * so crmd runs the same under systemd, under a shell or in a test.
 */
#ifndef CRMD_CORE_NOTIFY_H
#define CRMD_CORE_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID once and opens the datagram socket.
 * Returns false when no service manager listens (the calls below are then no-ops). */
bool notify_init(void);

/* Sends msg ("READY=1", "STOPPING=1\nSTATUS=draining", ...); false when it could not be sent. */
bool notify_send(const char *msg);

/* The watchdog period the manager asked for, in ms (WatchdogSec=), or 0 when it asked none
 * or asked it of another process ($WATCHDOG_PID). Pings are due every half of it. */
uint64_t notify_watchdog_ms(void);

/* Releases the socket. */
void notify_close(void);

#endif
