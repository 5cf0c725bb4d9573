// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* OOM kill sensor: one record per victim, captured at oom/mark_victim while the victim's
 * task_struct, mm and cgroups are still intact. */
#include "mend_common.bpf.h"
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

MEND_DEFINE_STATS();

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024); /* ~45 records: OOM kills are rare */
} events SEC(".maps");

/* Kernel 6.2 (commit f1a7941243c1 "mm: convert mm's rss stats into percpu_counter") changed
 * mm_struct::rss_stat from struct mm_rss_stat { atomic_long_t count[]; } to an array of
 * percpu_counter. */
struct mm_rss_stat___pre62 {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));
struct mm_struct___pre62 {
	struct mm_rss_stat___pre62 rss_stat;
} __attribute__((preserve_access_index));

enum { RSS_FILE = 0, RSS_ANON = 1, RSS_SWAP = 2, RSS_SHMEM = 3 };

static __always_inline __s64 rss_counter(struct mm_struct *mm, int i)
{
	if (bpf_core_type_exists(struct mm_rss_stat___pre62) &&
	    !bpf_core_field_exists(((struct percpu_counter *)0)->count))
		return BPF_CORE_READ((struct mm_struct___pre62 *)mm, rss_stat.count[i].counter);
	return BPF_CORE_READ(mm, rss_stat[i].count);
}

/* A memcg OOM fails a charge because usage + batch > max somewhere on the path to the root.
 * Allow for the per-cpu charge stock (MEMCG_CHARGE_BATCH pages) and reclaim in flight. */
#define LIMIT_SLACK_PAGES 512
#define MAX_MEMCG_WALK 8

static __always_inline void classify(struct cgroup_subsys_state *css, struct mend_oom_event *e)
{
	struct mem_cgroup *memcg = (struct mem_cgroup *)css; /* css is the first member */
	struct page_counter *pc = &memcg->memory;

#pragma unroll
	for (int i = 0; i < MAX_MEMCG_WALK; i++) {
		if (!pc)
			break;
		unsigned long max = BPF_CORE_READ(pc, max);
		long usage = BPF_CORE_READ(pc, usage.counter);
		struct page_counter *parent = BPF_CORE_READ(pc, parent);
		if (!parent)
			break; /* the root memcg has no limit of its own */
		/* PAGE_COUNTER_MAX is LONG_MAX / PAGE_SIZE: anything that large is "no limit". */
		if (max < (1UL << 50) && usage + LIMIT_SLACK_PAGES >= (long)max) {
			e->constrained = 1;
			e->limit_pages = max;
			e->usage_pages = usage;
			return;
		}
		pc = parent;
	}
}

SEC("tp_btf/mark_victim")
int BPF_PROG(handle_mark_victim, struct task_struct *task, uid_t uid)
{
	struct mend_oom_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		mend_stat_inc(&stats, MEND_STAT_RB_DROPS);
		return 0;
	}
	/* Ring buffer memory is not zeroed and the record is too large for memset: set every
	 * scalar; strings are NUL-terminated by the helpers and names[] past depth is unread. */
	e->constrained = 0;
	e->limit_pages = 0;
	e->usage_pages = 0;
	e->rss_pages = 0;
	e->total_vm_pages = 0;
	e->_pad = 0;
	e->memcg.depth = 0;
	e->memcg.truncated = 0;
	e->kind = MEND_EV_OOM_KILL;
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = BPF_CORE_READ(task, tgid);
	e->tid = BPF_CORE_READ(task, pid);
	e->oom_score_adj = BPF_CORE_READ(task, signal, oom_score_adj);
	e->page_size = 4096;
	BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
	bpf_get_current_comm(e->trigger_comm, sizeof(e->trigger_comm));
	e->trigger_pid = bpf_get_current_pid_tgid() >> 32;

	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	if (mm) {
		__s64 rss = rss_counter(mm, RSS_FILE) + rss_counter(mm, RSS_ANON) +
			    rss_counter(mm, RSS_SHMEM);
		e->rss_pages = rss > 0 ? rss : 0;
		e->total_vm_pages = BPF_CORE_READ(mm, total_vm);
	}

	struct css_set *cset = BPF_CORE_READ(task, cgroups);
	if (bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id)) {
		int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
		struct cgroup_subsys_state *css = BPF_CORE_READ(cset, subsys[id]);
		if (css) {
			mend_capture_cgroup(BPF_CORE_READ(css, cgroup), &e->memcg);
			classify(css, e);
		}
	}
	mend_capture_cgroup(BPF_CORE_READ(cset, dfl_cgrp), &e->dfl_cg);

	bpf_ringbuf_submit(e, 0);
	mend_stat_inc(&stats, MEND_STAT_EVENTS);
	return 0;
}
