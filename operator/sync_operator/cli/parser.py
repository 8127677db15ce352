"""The command-line grammar of ``kubectl sync``; parsing only, no I/O.

Global flags (``--kubeconfig``, ``--context``, ``-n``) are accepted before or after the
command, as kubectl accepts them; argparse's own errors exit with 2 (usage).
"""

from __future__ import annotations

import argparse

from sync_operator.api import JobType, Phase

PROG = "kubectl sync"
OUTPUTS = ("json", "yaml", "wide", "name")
QUEUE_NOTE = ("Queue positions (Queued #N) and why a job waits are computed here, on read, in "
              "the operator's order (priority, then age, then uid) among the jobs this "
              "command sees: its namespace, or every namespace with -A. The operator admits "
              "per its own scope and limits, so #1 is first among these, not a promise to "
              "start next.")


def job_type(text: str) -> JobType:
    try:
        return JobType(text.strip().lower())
    except ValueError:
        choices = ", ".join(t.value for t in JobType)
        raise argparse.ArgumentTypeError(
            f"unknown job type {text!r} (expected one of: {choices})") from None


def job_types(text: str) -> list[JobType]:
    """``--type quran,prayer``."""
    return [job_type(part) for part in text.split(",") if part.strip()]


def phases(text: str) -> list[Phase]:
    """``--phase running,queued``: case-insensitive, comma-separated."""
    by_name = {p.value.lower(): p for p in Phase}
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part.lower() not in by_name:
            choices = ", ".join(p.value for p in Phase)
            raise argparse.ArgumentTypeError(
                f"unknown phase {part!r} (expected one of: {choices})")
        out.append(by_name[part.lower()])
    return out


def _globals(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("global flags")
    group.add_argument("--kubeconfig", default=default, metavar="PATH",
                       help="kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
    group.add_argument("--context", default=default, help="kubeconfig context to use")
    group.add_argument("-n", "--namespace", default=default,
                       help="namespace (default: the context's namespace)")


def _all_namespaces(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-A", "--all-namespaces", action="store_true",
                        help="every namespace (overrides -n)")


SELECTOR_NOTE = ("Give NAMEs or -l SELECTOR, not both. Each job's result is printed; the "
                 "exit code is 1 if any was refused.")


def _selector(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-l", "--selector", metavar="SELECTOR",
                        help="every SyncJob in the namespace with these labels, e.g. "
                             "sync.jobcontrol.io/schedule=prayer-every-6h")


def _output(parser: argparse.ArgumentParser, choices: tuple[str, ...] = OUTPUTS) -> None:
    parser.add_argument("-o", "--output", choices=choices, help="output format")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Inspect and control SyncJobs and SyncSchedules.",
        epilog="Exit codes: 0 ok, 1 error from the API server (or no connection), 2 usage.")
    _globals(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_: str, aliases: tuple[str, ...] = (),
                epilog: str | None = None) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_, description=help_, aliases=list(aliases),
                                  epilog=epilog)
        _globals(sub, suppress=True)
        return sub

    sub = command("list", "List SyncJobs with phase, progress and queue position.", ("ls",),
                  epilog=QUEUE_NOTE + " --type, --phase and -l narrow the table, not the "
                                      "line: positions still count every job in scope.")
    _all_namespaces(sub)
    sub.add_argument("--type", type=job_types, help="only these job types (comma-separated)")
    sub.add_argument("--phase", type=phases, help="only these phases (comma-separated)")
    sub.add_argument("-l", "--selector", help="label selector, e.g. sync.jobcontrol.io/schedule=x")
    _output(sub)

    sub = command("get", "Show one SyncJob in detail: spec, status, conditions, progress.",
                  epilog=QUEUE_NOTE + " For a waiting job, get lists its namespace once.")
    sub.add_argument("name", metavar="NAME")
    _output(sub, ("json", "yaml", "wide"))

    sub = command("describe", "Show one SyncJob in detail with the recent Events of it "
                              "and its runner Job (as kubectl describe does).")
    sub.add_argument("name", metavar="NAME")

    sub = command("logs", "Print a SyncJob's runner output (its newest pod's log, read "
                          "with your own rights, as kubectl logs does).")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("-f", "--follow", action="store_true",
                     help="keep printing new output until the runner exits")
    sub.add_argument("--tail", type=int, default=-1, metavar="N",
                     help="only the last N lines (default -1: all)")

    sub = command("create", "Create a SyncJob.")
    sub.add_argument("job_type", metavar="TYPE", type=job_type,
                     help=f"one of: {', '.join(t.value for t in JobType)}")
    naming = sub.add_mutually_exclusive_group()
    naming.add_argument("--name", help="the SyncJob's name")
    naming.add_argument("--generate-name", action="store_true",
                        help="let the API server name it <type>-xxxxx (the default)")
    sub.add_argument("--priority", type=int, help="1 (most urgent) .. 10; default 5")
    sub.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="task parameter; VALUE is read as JSON if it parses (repeatable)")
    sub.add_argument("--params-json", metavar="JSON", help="all task parameters as a JSON object")
    sub.add_argument("--timeout-minutes", type=int, metavar="M", help="running-time budget")
    sub.add_argument("--retry-attempts", type=int, metavar="R", help="pod retries (default 3)")
    sub.add_argument("--dedup-key", metavar="KEY", help="never run two jobs with this key at once")
    sub.add_argument("--paused", action="store_true", help="create it paused (held in the queue)")
    _output(sub, ("json", "yaml", "name"))

    for name, text in (("pause", "Pause SyncJobs: held if queued, stopped at a checkpoint if "
                                 "running."),
                       ("resume", "Resume paused SyncJobs (they continue from their checkpoint)."),
                       ("cancel", "Cancel SyncJobs. This cannot be undone."),
                       ("delete", "Delete SyncJobs (their runner Jobs and pods go with them; "
                                  "the audit log keeps their story).")):
        sub = command(name, text, epilog=SELECTOR_NOTE)
        sub.add_argument("names", nargs="*", metavar="NAME")
        _selector(sub)
        if name in ("cancel", "delete"):
            sub.add_argument("-y", "--yes", action="store_true",
                             help="do not ask for confirmation (required when stdin is not "
                                  "a terminal)")

    sub = command("priority", "Change SyncJobs' priority (1 most urgent .. 10).",
                  epilog="priority NAME... PRIORITY, or priority -l SELECTOR PRIORITY.")
    sub.add_argument("values", nargs="+", metavar="NAME... PRIORITY",
                     help="the jobs' names (none with -l), then the priority")
    _selector(sub)

    sub = command("watch", "Follow SyncJobs live until all of them have finished.",
                  epilog=QUEUE_NOTE + " Watching NAMEs still follows their namespace, so "
                                      "their places in line stay live.")
    sub.add_argument("names", nargs="*", metavar="NAME", help="jobs to watch (default: all in "
                                                              "the namespace)")
    _all_namespaces(sub)
    sub.add_argument("--once", "--plain", dest="plain", action="store_true",
                     help="print one plain line per change instead of a live table "
                          "(the default when stdout is not a terminal)")
    sub.add_argument("--follow", action="store_true",
                     help="keep watching after every job has finished")

    sub = command("schedules", "List SyncSchedules, or change one: schedules set NAME ...",
                  ("schedule", "ssched"))
    sub.add_argument("action", nargs="?", choices=["set"], help="change a schedule's spec")
    sub.add_argument("name", nargs="?", metavar="SCHEDULE")
    sub.add_argument("--cron", help="the cron expression (spec.schedule)")
    sub.add_argument("--time-zone", help="an IANA time zone, e.g. Asia/Riyadh")
    sub.add_argument("--priority", type=int, help="priority of the jobs it creates (1..10)")
    sub.add_argument("--max-concurrency", type=int, help="running jobs of its type at once")
    _all_namespaces(sub)
    _output(sub)

    sub = command("console", "Open the web console, logged in as you (a one-minute code, "
                             "never your token, goes into the URL).")
    sub.add_argument("--console", metavar="URL",
                     help="the console's address (default: $SYNC_CONSOLE_URL)")
    sub.add_argument("--no-browser", action="store_true", help="only print the URL")

    for name, text in (("history", "SyncJobs past and present, from the mirror (via the "
                                    "console, with your own rights)."),
                       ("audit", "Who did what, from the audit log (via the console, with "
                                 "your own rights).")):
        sub = command(name, text)
        sub.add_argument("--console", metavar="URL",
                         help="the console's address (default: $SYNC_CONSOLE_URL)")
        sub.add_argument("--search", help="part of the job's name")
        sub.add_argument("--since", metavar="TIME", help="ISO 8601 time, e.g. 2026-12-01")
        sub.add_argument("--limit", type=int, default=50, help="rows (default 50, max 500)")
        if name == "history":
            sub.add_argument("--type", type=job_type, help="one job type")
            sub.add_argument("--phase", help="one phase, e.g. Failed")
        else:
            sub.add_argument("--action", help="e.g. pause, cancel, create")
            sub.add_argument("--user", help="who did it")
        _output(sub, ("json", "yaml"))

    sub = command("stats", "Per job type: success rate, duration p50/p95 and throughput "
                           "over time (via the console, with your own rights).")
    sub.add_argument("--console", metavar="URL",
                     help="the console's address (default: $SYNC_CONSOLE_URL)")
    sub.add_argument("--since", metavar="TIME", help="ISO 8601 time, e.g. 2026-12-01")
    sub.add_argument("--bucket", choices=["minute", "hour", "day"], default="hour",
                     help="throughput per minute (last 2 h), hour (2 days, the default) or "
                          "day (30 days) unless --since says")
    _output(sub, ("json", "yaml"))

    for name, text in (("suspend", "Suspend SyncSchedules (no new jobs; active ones go on)."),
                       ("unsuspend", "Unsuspend SyncSchedules.")):
        sub = command(name, text)
        sub.add_argument("names", nargs="+", metavar="SCHEDULE")

    sub = command("trigger", "Create a one-off SyncJob from a SyncSchedule's template now.")
    sub.add_argument("name", metavar="SCHEDULE")
    _output(sub, ("json", "yaml", "name"))
    return parser


ALIASES = {"ls": "list", "schedule": "schedules", "ssched": "schedules"}


def canonical(command: str) -> str:
    return ALIASES.get(command, command)
