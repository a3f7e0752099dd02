/* SPDX-License-Identifier: MIT */
/* The control socket of a running pipeline, for `sluice top` and `sluice
 * tap` (see control.c for the protocol), and those two commands' client
 * side (control_client.c). */
#ifndef SL_CONTROL_H
#define SL_CONTROL_H

#include "err.h"

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

struct sl_batch;
struct sl_node;
struct sl_pipeline;
struct sl_control;

/* Taps at once, per pipeline. */
#define SL_CONTROL_TAPS 4

/* The server's error lines that may change if the client asks again
 * (top and tap do, with a backoff); any other "#error" will not. */
#define SL_CONTROL_STARTING "#error the pipeline is still starting\n"
#define SL_CONTROL_FULL     "#error too many clients\n"
#define SL_CONTROL_NOMEM    "#error out of memory\n"

/* The socket path `control: auto` gives the pipeline file: the same for
 * every spelling of its path, in $XDG_RUNTIME_DIR or /tmp/sluice-UID.
 * 0, SL_EIO (the file is not there), SL_EINVAL (too long). */
int sl_control_auto_path(const char *pipeline_file, char *buf, size_t len);

/* Listens on path (0600; its folder made 0700 when missing, and with
 * private_dir, refused unless it is this user's alone). A socket left by a
 * run that is gone is replaced; one a live run answers on is not, nor
 * anything that is not a socket (SL_EIO, saying so). NULL with err
 * filled. Thread: main. */
struct sl_control *sl_control_start(const char *path, bool private_dir, struct sl_err *err);
/* Requests see pl from now on. Thread: any (release). */
void sl_control_attach(struct sl_control *c, struct sl_pipeline *pl);
/* Fills fds with what the loop polls (at most max); returns how many. */
size_t sl_control_pollfds(struct sl_control *c, struct pollfd *fds, size_t max);
/* True while a client is connected (the loop then comes back often, to
 * move what taps gathered) or accept waits for a free descriptor. */
bool sl_control_tapping(const struct sl_control *c);
/* Accepts, reads requests, answers and sends what taps gathered, never
 * blocking. Thread: the loop's. */
void sl_control_run(struct sl_control *c);
/* Closes every client and ends every tap: before the pipeline is freed.
 * Thread: the loop's, or main once the loop thread is joined. */
void sl_control_close_clients(struct sl_control *c);
/* Closes the socket and removes its file; NULL ok; returns NULL. After
 * the pipeline is gone (workers may tap until then). Thread: main. */
struct sl_control *sl_control_stop(struct sl_control *c);

/* A worker emitted batch on output out of node (0: its own; a sink: what
 * it writes) while node->tapped > 0: the taps of that output take the
 * records they want. Never blocks on the socket.
 * Thread: any. */
void sl_control_tap(struct sl_control *c,
                    const struct sl_node *node,
                    size_t out,
                    const struct sl_batch *batch);

/* Tests: fn(arg) runs in sl_control_tap once a batch's records are
 * formatted, before they go to the tap's buffer. */
void sl_control_test_on_format(struct sl_control *c, void (*fn)(void *arg), void *arg);

/* `sluice top TARGET [-n N]` and `sluice tap TARGET NODE [--limit N]
 * [--where EXPR]`: TARGET is the pipeline file or its socket. Return the
 * exit code. Thread: main. */
int sl_control_top(const char *target, int iterations);
int sl_control_tap_main(const char *target,
                        const char *node,
                        unsigned long long limit,
                        const char *where);

#endif
