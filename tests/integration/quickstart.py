#!/usr/bin/env python3
# The README's quick start as data, for quickstart_test.sh: its commands, and
# the check of what each printed against what the README shows.
#
# The quick start is the part of README.md between the lines
# <!-- quickstart:begin --> and <!-- quickstart:end -->. In it, each
# ```console block holds commands, each on a line that starts with a prompt
# USER@MACHINE:DIR$ (or # for root), followed by the lines it prints, up to
# the next command or the end of the block. A line of just "..." stands for
# any number of lines (output trimmed where it is long).
#
# What varies from one run to the next is normalised, the same way in the
# README and in what the command printed, before they are compared:
#   - the terminal's drawing is undone as a screen would show it (the
#     commands run on a pseudo-terminal, as a person runs them): status lines
#     drawn between save and restore cursor (progress bars) and other control
#     sequences are dropped, text after a carriage return replaces the line
#     (progress counters), trailing blanks go;
#   - dates and times (2026-12-02T10:49:03Z and the like) become <time>;
#   - a TOTP seed (secret=... in an otpauth URI) becomes <secret> (the codes
#     typed are not echoed);
#   - the lines of a QR code (block characters) become one <qr> line;
#   - the package version in a .deb file name or in "(VERSION)" after a
#     package name becomes <version>, sizes (123 kB) <size>, dpkg's count of
#     installed files <n>, apt's count of packages not upgraded <n>;
#   - the kernel release after "Linux HOST " becomes <kernel>;
#   - phictl status's version and uptime_seconds values become <version>
#     and <n>.
#
# Usage:
#   quickstart.py commands README.md    one line a command: USER TAB MACHINE TAB DIR TAB COMMAND
#   quickstart.py check README.md N FILE
#       compares what command N (0 is the first) printed, in FILE, with the
#       README; exit 0 when they agree, else 1 with a unified diff (README
#       first) on standard output.
#   quickstart.py screen FILE           FILE as the screen showed it (for the README)
#   quickstart.py clock-synced          exit 0 when adjtimex(2) says the clock is
#                                       synchronised, as phictl doctor reads it
import ctypes
import ctypes.util
import difflib
import re
import sys

BEGIN = "<!-- quickstart:begin -->"
END = "<!-- quickstart:end -->"
PROMPT = re.compile(r"^([a-z_][a-z0-9_-]*)@([a-z0-9][a-z0-9-]*):(~[^ ]*|/[^ ]*)[#$] (\S.*)$")
# A status line drawn between save and restore cursor (apt's and dpkg's
# progress bars), then any other control sequence.
STATUS_LINE = re.compile(r"\x1b7.*?\x1b8")
ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][A-Z0-9]|[=>78])")
QR_LINE = re.compile(r"^[ \u2580\u2584\u2588]+$")
RULES = [
    (re.compile(r"\b\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}| [A-Z]{3,4})?)?"),
     "<time>"),
    (re.compile(r"secret=[A-Z2-7]+"), "secret=<secret>"),
    (re.compile(r"_[0-9][A-Za-z0-9.+~-]*_([a-z0-9]+)\.deb\b"), r"_<version>_\1.deb"),
    (re.compile(r"\b(phiaccessd|libpam-phi|libnss-phi) \([0-9][A-Za-z0-9.+~-]*\)"), r"\1 (<version>)"),
    (re.compile(r"\b\d[\d.,]* ?[kMG]?B\b"), "<size>"),
    (re.compile(r"\(Reading database \.\.\. (\d+%|\d+ files and directories currently installed\.)\)"),
     "(Reading database ... <n> files and directories currently installed.)"),
    (re.compile(r"and \d+ not upgraded"), "and <n> not upgraded"),
    (re.compile(r"^Linux (\S+) .*$"), r"Linux \1 <kernel>"),
    (re.compile(r"^(version +)\S+$"), r"\1<version>"),
    (re.compile(r"^(uptime_seconds +)\d+$"), r"\1<n>"),
]


def quickstart(readme):
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        sys.exit(f"quickstart.py: {readme} must have one {BEGIN} ... {END}")
    part = text[text.index(BEGIN) + len(BEGIN):text.index(END)]
    commands = []  # (user, machine, dir, command, [output lines])
    in_block = False
    for line in part.split("\n"):
        if not in_block:
            if line.strip() == "```console":
                in_block = True
            continue
        if line.strip() == "```":
            in_block = False
            continue
        m = PROMPT.match(line)
        if m:
            commands.append((m.group(1), m.group(2), m.group(3), m.group(4), []))
        elif commands:
            commands[-1][4].append(line)
        else:
            sys.exit(f"quickstart.py: output before the first command: {line!r}")
    if in_block:
        sys.exit("quickstart.py: a ```console block is not closed")
    return commands


def screen(line):
    line = ANSI.sub("", STATUS_LINE.sub("", line.rstrip("\r")))
    # Text after a carriage return is drawn over what came before it
    # (progress counters): what stays on the screen is the last part.
    return line.split("\r")[-1].rstrip()


def normalise(lines):
    out = []
    for line in lines:
        line = screen(line)
        for rule, repl in RULES:
            line = rule.sub(repl, line)
        if QR_LINE.match(line) and re.search("[\u2580\u2584\u2588]", line):
            if out and out[-1] == "<qr>":
                continue
            line = "<qr>"
        out.append(line)
    while out and out[-1] == "":
        out.pop()
    return out


def agrees(expected, actual):
    pattern = "".join(r"(?:.*\n)*?" if line == "..." else re.escape(line) + r"\n" for line in expected)
    return re.fullmatch(pattern, "".join(line + "\n" for line in actual)) is not None


class Timex(ctypes.Structure):
    # struct timex up to status; the kernel writes the whole struct, hence the tail.
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("tail", ctypes.c_char * 256)]


def clock_synced():
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    tx = Timex()
    state = libc.adjtimex(ctypes.byref(tx))
    time_error, sta_unsync = 5, 0x0040
    return state >= 0 and state != time_error and not tx.status & sta_unsync


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "clock-synced":
        return 0 if clock_synced() else 1
    if len(sys.argv) == 3 and sys.argv[1] == "commands":
        for user, machine, cwd, command, _ in quickstart(sys.argv[2]):
            if "\t" in command:
                sys.exit(f"quickstart.py: a tab in the command {command!r}")
            print(f"{user}\t{machine}\t{cwd}\t{command}")
        return 0
    if len(sys.argv) == 5 and sys.argv[1] == "check":
        commands = quickstart(sys.argv[2])
        n = int(sys.argv[3])
        with open(sys.argv[4], encoding="utf-8", errors="replace", newline="") as f:
            actual = normalise(f.read().split("\n"))
        expected = normalise(commands[n][4])
        if agrees(expected, actual):
            return 0
        sys.stdout.writelines(difflib.unified_diff(
            [line + "\n" for line in expected], [line + "\n" for line in actual],
            f"README.md: {commands[n][3]}", "what it printed (normalised)"))
        return 1
    if len(sys.argv) == 3 and sys.argv[1] == "screen":
        with open(sys.argv[2], encoding="utf-8", errors="replace", newline="") as f:
            lines = [screen(line) for line in f.read().split("\n")]
        while lines and lines[-1] == "":
            lines.pop()
        sys.stdout.writelines(line + "\n" for line in lines)
        return 0
    sys.exit(__doc__ or "usage: quickstart.py commands README | check README N FILE")


if __name__ == "__main__":
    sys.exit(main())
