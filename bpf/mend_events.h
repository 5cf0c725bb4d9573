/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The C ABI between mend's BPF programs and the agent. Included by every .bpf.c (with vmlinux.h
 * types) and by agent/sensors (with <linux/types.h>). Fixed-width fields, explicit padding; the
 * agent static_asserts every size, so a change on one side that the other did not follow fails
 * the build instead of decoding garbage.
 */
#ifndef MEND_BPF_EVENTS_H
#define MEND_BPF_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define MEND_COMM_LEN 16
/* A cgroup path is captured in the kernel as up to MEND_CG_LEVELS components, leaf first,
 * each truncated to MEND_CG_NAME_LEN-1 bytes: the victim of an OOM kill is gone before
 * userspace can look its cgroup up. */
#define MEND_CG_LEVELS 10
#define MEND_CG_NAME_LEN 64
#define MEND_PATH_LEN 128

/* Latency histogram: 4 sub-buckets per power of two, in microseconds. Bucket b covers
 * [lower(b), lower(b+1)); see agent/sensors/latency_hist.h for the userspace side. */
#define MEND_HIST_SUB_BITS 2
#define MEND_HIST_BUCKETS 160

enum mend_event_kind {
	MEND_EV_OOM_KILL = 1,
	MEND_EV_FS_ERROR = 2,
};

struct mend_cgroup_path {
	__u32 depth;	 /* components captured */
	__u32 truncated; /* 1 when the path had more than MEND_CG_LEVELS components */
	char names[MEND_CG_LEVELS][MEND_CG_NAME_LEN]; /* names[0] is the leaf */
};

struct mend_oom_event {
	__u32 kind; /* MEND_EV_OOM_KILL */
	__u32 pid;  /* tgid of the victim */
	__u32 tid;
	__s32 oom_score_adj;
	__u64 ts_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 rss_pages;
	__u64 total_vm_pages;
	/* The nearest memcg (victim's own or an ancestor) whose usage was at its limit, when one
	 * is: that is what makes the kill a memcg OOM rather than a global one. */
	__u64 limit_pages;
	__u64 usage_pages;
	__u32 constrained; /* 1: a memcg limit was hit; 0: global OOM */
	__u32 page_size;
	__u32 trigger_pid; /* the task whose allocation triggered the OOM */
	__u32 _pad;
	char comm[MEND_COMM_LEN];
	char trigger_comm[MEND_COMM_LEN];
	struct mend_cgroup_path memcg; /* memory controller hierarchy (v1 memory or v2) */
	struct mend_cgroup_path
	    dfl_cg; /* default (v2/unified) hierarchy: where systemd puts units */
};

struct mend_fs_error_event {
	__u32 kind; /* MEND_EV_FS_ERROR */
	__u32 pid;
	__u32 tid;
	__s32 err; /* positive errno: 28 ENOSPC, 122 EDQUOT */
	__u64 ts_ns;
	__u64 cgroup_id; /* v2 cgroup id of the writer */
	__u32 syscall_nr;
	__u32 dev_major; /* 0:0 when the syscall has no file descriptor to look at */
	__u32 dev_minor;
	__u32 has_path; /* path[] holds the syscall's user path argument */
	__u64 folded;	/* failures of this (process, fs, errno) folded into this record */
	char comm[MEND_COMM_LEN];
	char path[MEND_PATH_LEN];
	struct mend_cgroup_path dfl_cg;
};

/* Key of the per-cgroup, per-filesystem written-bytes map. */
struct mend_writer_key {
	__u64 cgroup_id;
	__u32 dev_major;
	__u32 dev_minor;
};

struct mend_writer_val {
	__u64 bytes;
	__u64 writes;
};

/* Per block device, per CPU latency aggregate (cumulative; userspace sums the CPUs and diffs
 * successive reads). */
struct mend_dev_lat {
	__u64 count;
	__u64 sum_us;
	__u64 slow;	 /* completions at or over the slow threshold */
	__u64 untimed;	 /* completions without a start timestamp (iostats off) */
	__u64 max_epoch; /* max_us is the max of this epoch */
	__u64 max_us;
	__u64 hist[MEND_HIST_BUCKETS];
};

struct mend_dev_key {
	__u32 major;
	__u32 minor;
};

/* Slow I/O per (device, cgroup), for naming who causes a stall. */
struct mend_io_cg_key {
	__u64 cgroup_id; /* kernfs id of the request's blkcg cgroup (io/blkio hierarchy) */
	__u32 major;
	__u32 minor;
};

struct mend_io_cg_val {
	__u64 slow_ios;
	__u64 bytes;
};

/* Index of each per-sensor counter in the `stats` array maps. */
enum mend_stat {
	MEND_STAT_RB_DROPS = 0, /* ring buffer full: event lost */
	MEND_STAT_MAP_FULL = 1, /* an aggregation map was full: sample lost */
	MEND_STAT_EVENTS = 2,	/* events submitted */
	MEND_STAT_MAX = 4,
};

#endif /* MEND_BPF_EVENTS_H */
