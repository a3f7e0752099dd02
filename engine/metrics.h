/* SPDX-License-Identifier: MIT */
/* engine.metrics: Prometheus /metrics and /health over HTTP
 * (libmicrohttpd), served on the loop thread (see metrics.c). */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include "err.h"

#include <stdint.h>

struct sl_buf;
struct sl_pipeline;
struct sl_metrics;

/* Listens on host:port (an address or name of this machine). Returns the
 * server, or NULL with err filled (SL_EIO: the port is taken, the address
 * is not local). Thread: main. */
struct sl_metrics *sl_metrics_start(const char *host, int port, struct sl_err *err);
/* The descriptor to poll for input (an epoll set), or -1 while it is left
 * out (see sl_metrics_run): when readable, or by sl_metrics_due_ns at the
 * latest, call sl_metrics_run. */
int sl_metrics_fd(const struct sl_metrics *m);
/* When sl_metrics_run is due at the latest, now being now_ns. */
uint64_t sl_metrics_due_ns(const struct sl_metrics *m, uint64_t now_ns);
/* Serves what is ready, without blocking. Thread: the loop's. */
void sl_metrics_run(struct sl_metrics *m);
/* From now on /metrics shows pl and /health says how it runs. pl must
 * outlive the server's last sl_metrics_run. Thread: any. */
void sl_metrics_attach(struct sl_metrics *m, struct sl_pipeline *pl);
/* Closes the server; NULL ok; returns NULL. */
struct sl_metrics *sl_metrics_stop(struct sl_metrics *m);

/* Appends s as a label value, escaped (\\, \", \n). 0 or SL_ENOMEM. */
int sl_metrics_label(struct sl_buf *buf, const char *s);

/* Appends the Prometheus text of pl (NULL: only the process's lines) to
 * buf. Reads atomics only: safe while the pipeline runs. 0 or SL_ENOMEM. */
int sl_metrics_format(const struct sl_pipeline *pl, uint64_t uptime_ns, struct sl_buf *buf);

#endif
