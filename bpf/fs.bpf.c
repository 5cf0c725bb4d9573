// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Filesystem sensor, kernel half:
 *  - every syscall that fails with ENOSPC or EDQUOT becomes one record (folded per process and
 *    filesystem within min_interval_ns, the fold count carried by the next record);
 *  - bytes written by successful write-class syscalls to regular files are summed per
 *    (cgroup, filesystem) in a map, so userspace can name a filesystem's top writers.
 * Both hang off raw sys_exit: one comparison for every other syscall. */
#include "mend_common.bpf.h"
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ENOSPC 28
#define EDQUOT 122
#define AT_FDCWD -100
#define S_IFMT 00170000
#define S_IFREG 0100000

const volatile __u64 min_interval_ns = 1000000; /* fold repeats of one (process, fs, errno) */
const volatile __u8 count_writers = 1;

MEND_DEFINE_STATS();

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024); /* ~300 records; repeats are folded in-kernel */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct mend_writer_key);
	__type(value, struct mend_writer_val);
} writers SEC(".maps");

/* Failures fold per (cgroup, filesystem, errno), not per process: a storm of short-lived
 * processes (a crash-looping unit, a shell loop) hitting one full filesystem is one stream of
 * events a millisecond apart at most, not one event per process. */
struct fold_key {
	__u64 cgroup_id;
	__s32 err;
	__u32 dev_major;
	__u32 dev_minor;
	__u32 pad;
};
struct fold_val {
	__u64 last_ns;
	__u64 folded;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct fold_key);
	__type(value, struct fold_val);
} folds SEC(".maps");

/* Which argument holds the file descriptor, or the path, of a syscall that can fail with
 * ENOSPC/EDQUOT or write bytes. Syscall numbers are per architecture; only x86_64 is mapped so
 * far, elsewhere records carry no device and writers are not counted. */
enum arg_kind { ARG_NONE = 0, ARG_FD, ARG_PATH, ARG_DIRFD_PATH };
struct arg_loc {
	__u8 kind;
	__u8 idx;      /* fd, or path when ARG_PATH */
	__u8 path_idx; /* path for ARG_DIRFD_PATH (idx is the dirfd) */
	__u8 writes;   /* a positive return value is a byte count written to the fd */
};

static __always_inline struct arg_loc syscall_args(long nr)
{
	struct arg_loc a = {};
#if defined(__TARGET_ARCH_x86)
	switch (nr) {
	case 1:	  /* write */
	case 18:  /* pwrite64 */
	case 20:  /* writev */
	case 296: /* pwritev */
	case 328: /* pwritev2 */
	case 40:  /* sendfile(out_fd, ...) */
		a.kind = ARG_FD, a.idx = 0, a.writes = 1;
		break;
	case 275: /* splice(fd_in, off_in, fd_out, ...) */
	case 326: /* copy_file_range(fd_in, off_in, fd_out, ...) */
		a.kind = ARG_FD, a.idx = 2, a.writes = 1;
		break;
	case 285: /* fallocate */
	case 77:  /* ftruncate */
	case 74:  /* fsync */
	case 75:  /* fdatasync */
	case 277: /* sync_file_range */
	case 3:	  /* close (NFS, delayed allocation) */
		a.kind = ARG_FD, a.idx = 0;
		break;
	case 2:	  /* open */
	case 85:  /* creat */
	case 83:  /* mkdir */
	case 133: /* mknod */
		a.kind = ARG_PATH, a.idx = 0;
		break;
	case 257: /* openat */
	case 437: /* openat2 */
	case 258: /* mkdirat */
	case 259: /* mknodat */
		a.kind = ARG_DIRFD_PATH, a.idx = 0, a.path_idx = 1;
		break;
	}
#endif
	return a;
}

static __always_inline long syscall_nr(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return regs->orig_ax; /* a BTF pointer in tp_btf: a plain load, no helper call */
#else
	return -1;
#endif
}

static __always_inline unsigned long syscall_arg(struct pt_regs *regs, int idx)
{
#if defined(__TARGET_ARCH_x86)
	switch (idx) {
	case 0:
		return regs->di;
	case 1:
		return regs->si;
	case 2:
		return regs->dx;
	case 3:
		return regs->r10;
	}
#endif
	return 0;
}

static __always_inline struct file *fd_file(struct task_struct *task, int fd)
{
	if (fd < 0)
		return 0;
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

static __always_inline dev_t file_dev(struct file *f)
{
	return f ? BPF_CORE_READ(f, f_inode, i_sb, s_dev) : 0;
}

static __always_inline void count_write(struct task_struct *task, int fd, long bytes)
{
	struct file *f = fd_file(task, fd);
	if (!f)
		return;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFREG)
		return;
	dev_t dev = file_dev(f);
	struct mend_writer_key k = {
	    .cgroup_id = bpf_get_current_cgroup_id(),
	    .dev_major = mend_dev_major(dev),
	    .dev_minor = mend_dev_minor(dev),
	};
	struct mend_writer_val *v = bpf_map_lookup_elem(&writers, &k);
	if (v) {
		__sync_fetch_and_add(&v->bytes, bytes);
		__sync_fetch_and_add(&v->writes, 1);
		return;
	}
	struct mend_writer_val init = {.bytes = bytes, .writes = 1};
	if (bpf_map_update_elem(&writers, &k, &init, BPF_NOEXIST) != 0) {
		/* Lost a race with another CPU inserting the same key: add to its entry. */
		v = bpf_map_lookup_elem(&writers, &k);
		if (v) {
			__sync_fetch_and_add(&v->bytes, bytes);
			__sync_fetch_and_add(&v->writes, 1);
		} else {
			mend_stat_inc(&stats, MEND_STAT_MAP_FULL);
		}
	}
}

static __always_inline void report_error(struct task_struct *task, struct pt_regs *regs, long nr,
					 struct arg_loc a, int err)
{
	dev_t dev = 0;
	const char *upath = 0;

	if (a.kind == ARG_FD) {
		dev = file_dev(fd_file(task, (int)syscall_arg(regs, a.idx)));
	} else if (a.kind == ARG_PATH || a.kind == ARG_DIRFD_PATH) {
		upath = (const char *)syscall_arg(regs, a.kind == ARG_PATH ? a.idx : a.path_idx);
		char first = 0;
		bpf_probe_read_user(&first, 1, upath);
		if (first != '/') {
			/* Relative: the filesystem is the one of the directory it is relative to.
			 */
			int dirfd =
			    a.kind == ARG_DIRFD_PATH ? (int)syscall_arg(regs, a.idx) : AT_FDCWD;
			if (dirfd == AT_FDCWD)
				dev = BPF_CORE_READ(task, fs, pwd.dentry, d_sb, s_dev);
			else
				dev = file_dev(fd_file(task, dirfd));
		}
	}

	__u64 now = bpf_ktime_get_ns();
	__u64 folded = 0;
	struct fold_key fk = {
	    .cgroup_id = bpf_get_current_cgroup_id(),
	    .err = err,
	    .dev_major = mend_dev_major(dev),
	    .dev_minor = mend_dev_minor(dev),
	};
	struct fold_val *fv = bpf_map_lookup_elem(&folds, &fk);
	if (fv) {
		if (now - fv->last_ns < min_interval_ns) {
			__sync_fetch_and_add(&fv->folded, 1);
			return;
		}
		folded = __sync_lock_test_and_set(&fv->folded, 0);
		fv->last_ns = now;
	} else {
		struct fold_val init = {.last_ns = now};
		bpf_map_update_elem(&folds, &fk, &init, BPF_ANY);
	}

	struct mend_fs_error_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		mend_stat_inc(&stats, MEND_STAT_RB_DROPS);
		return;
	}
	__u64 id = bpf_get_current_pid_tgid();
	e->kind = MEND_EV_FS_ERROR;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->err = err;
	e->ts_ns = now;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->syscall_nr = (__u32)nr;
	e->dev_major = mend_dev_major(dev);
	e->dev_minor = mend_dev_minor(dev);
	e->folded = folded;
	e->has_path = 0;
	e->path[0] = 0;
	if (upath && bpf_probe_read_user_str(e->path, sizeof(e->path), upath) > 0)
		e->has_path = 1;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	mend_capture_cgroup(BPF_CORE_READ(task, cgroups, dfl_cgrp), &e->dfl_cg);
	bpf_ringbuf_submit(e, 0);
	mend_stat_inc(&stats, MEND_STAT_EVENTS);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(handle_sys_exit, struct pt_regs *regs, long ret)
{
	if (ret == -ENOSPC || ret == -EDQUOT) {
		long nr = syscall_nr(regs);
		report_error(bpf_get_current_task_btf(), regs, nr, syscall_args(nr), (int)-ret);
		return 0;
	}
	if (ret <= 0 || !count_writers)
		return 0;
	long nr = syscall_nr(regs);
	struct arg_loc a = syscall_args(nr);
	if (a.writes)
		count_write(bpf_get_current_task_btf(), (int)syscall_arg(regs, a.idx), ret);
	return 0;
}
