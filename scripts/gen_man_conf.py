#!/usr/bin/env python3
"""gen_man_conf.py SLUICED SLUICE_CTLD OUT - writes sluice.conf(5) from the binaries' own
key lists (`sluiced --print-defaults`, `sluice-ctld --print-config`), so the manual page
names every key with its default and description, as the build that installs it has them."""
import subprocess
import sys


def esc(s):
    """troff: a leading dot or quote would be a request; backslashes are escapes."""
    s = s.replace("\\", "\\e")
    return ("\\&" + s) if s[:1] in (".", "'") else s


def sections(text, comment):
    """[(section, [(key, default, description)])] from an INI dump with comment lines."""
    out, desc = [], []
    for line in text.splitlines():
        line = line.rstrip()
        if line.startswith("[") and line.endswith("]"):
            out.append((line[1:-1], []))
            desc = []
        elif line.startswith(comment):
            desc.append(line[len(comment):].strip())
        elif "=" in line and out:
            k, v = line.split("=", 1)
            out[-1][1].append((k.strip(), v.strip().strip('"'), " ".join(desc)))
            desc = []
    return out


node = subprocess.run([sys.argv[1], "--print-defaults"], check=True, capture_output=True,
                      text=True).stdout
ctld = subprocess.run([sys.argv[2], "--print-config"], check=True, capture_output=True,
                      text=True).stdout
o = [r'.TH SLUICE.CONF 5 "" "sluice" "File Formats"',
     ".SH NAME", r"sluice.conf \- configuration of sluiced and sluice\-ctld",
     ".SH SYNOPSIS",
     r"\fBsluiced \-\-config\fR \fIFILE\fR", ".br",
     r"\fBsluice\-ctld \-\-config\fR \fIFILE\fR",
     ".SH DESCRIPTION",
     "An INI file: \\fB[section]\\fR lines, \\fBkey = value\\fR lines and comments "
     "starting with \\fB;\\fR (sluiced) or \\fB#\\fR (sluice\\-ctld). Every key has a "
     "default, so both daemons start with no file at all. An unknown section or key, "
     "a value out of range or a line of another form stops the daemon at start with "
     "a message naming the key or line. Command\\-line options and "
     "\\fB\\-\\-set\\fR \\fISECTION.KEY=VALUE\\fR override the file; "
     "\\fB\\-\\-print\\-config\\fR prints the values a start would use.",
     ".SH SLUICED KEYS",
     "Written by \\fBsluiced \\-\\-print\\-defaults\\fR; the installed "
     "\\fIsluice.conf.example\\fR is that output."]


def keys_of(text, comment):
    """One .SS per section, one .TP per key: the key, its default, its description."""
    lines = []
    for sec, keys in sections(text, comment):
        lines += [".SS [%s]" % esc(sec)]
        for k, v, d in keys:
            lines += [".TP", "\\fB%s\\fR = %s" % (esc(k), esc(v) if v else "(empty)"), esc(d)]
    return lines


o += keys_of(node, ";")
o += [".SH SLUICE-CTLD KEYS", "As \\fBsluice\\-ctld \\-\\-print\\-config\\fR prints them "
      "with no file."]
o += keys_of(ctld, "#")
o += [".SH FILES", "\\fIDATA_DIR/node.meta\\fR: the worker and region counts a data dir "
      "was made with; \\fIDATA_DIR/wal/core\\-NN/\\fR: each worker's WAL; "
      "\\fIDATA_DIR/snap/\\fR: region and session snapshots.",
      ".SH SEE ALSO", "\\fBsluiced\\fR(8), \\fBsluice\\-ctld\\fR(8), \\fBsluicectl\\fR(8), "
      "\\fBsluice\\-bench\\fR(1); docs/config.md and docs/cluster.md in the source."]
with open(sys.argv[3], "w") as f:
    f.write("\n".join(o) + "\n")
