"""How many SLURM submissions (sbatch calls) a run under workflow/profiles/slurm makes, from its dry run.

    python tests/slurm/submissions.py --configfile my_study.yaml      # runs the dry run itself

A dry run (``snakemake -n --workflow-profile workflow/profiles/slurm``) lists each group job once ("Group job NAME")
and each ungrouped job as ``rule NAME:`` at the start of a line (group members are indented). Each
group job is one submission; each ungrouped job is one, except that the jobs of a rule named in
``slurm-array-jobs`` go out as ``ceil(jobs / slurm-array-limit)`` array submissions (all of them
are ready at once: they only wait for the prep job). Local rules (``localrule: True`` in the rule
files) and the target rule ``all`` (no code) run in the Snakemake process itself: never submitted.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
NORUN_RULES = {"all"}
_RULE_DEF = re.compile(r"^\s*rule (\w+):", re.M)


def local_rules(workflow_dir: Path = ROOT) -> set[str]:
    """Rules that run on the submit host: ``localrule: True`` in a rule, or a ``localrules:`` list."""
    names: set[str] = set()
    for path in [workflow_dir / "workflow" / "Snakefile", *sorted((workflow_dir / "workflow" / "rules").glob("*.smk"))]:
        text = path.read_text()
        defs = list(_RULE_DEF.finditer(text))
        for i, m in enumerate(defs):
            body = text[m.end(): defs[i + 1].start() if i + 1 < len(defs) else len(text)]
            if re.search(r"^\s*localrule:\s*True", body, re.M):
                names.add(m.group(1))
        for m in re.finditer(r"^localrules:\s*(.+)$", text, re.M):
            names.update(n.strip() for n in m.group(1).split(",") if n.strip())
    return names
_GROUP = re.compile(r"^\[[^\]]*\] Group job (\S+) \(")
_RULE = re.compile(r"^rule (\S+):$")


@dataclass
class Submissions:
    groups: Counter = field(default_factory=Counter)  # group name -> group jobs
    rules: Counter = field(default_factory=Counter)  # ungrouped rule -> jobs
    array_rules: set[str] = field(default_factory=set)
    array_limit: int = 1000
    grouped_jobs: int = 0  # jobs inside the group jobs

    @property
    def jobs(self) -> int:
        """Submittable jobs if every job went alone (no groups, no arrays)."""
        return sum(self.rules.values()) + self.grouped_jobs

    def per_kind(self) -> dict[str, int]:
        out: dict[str, int] = {f"group {name}": n for name, n in sorted(self.groups.items())}
        for rule, n in sorted(self.rules.items()):
            if rule in self.array_rules and n > 1:
                out[f"array {rule}"] = math.ceil(n / self.array_limit)
            else:
                out[f"rule {rule}"] = n
        return out

    @property
    def total(self) -> int:
        return sum(self.per_kind().values())


def profile_settings(profile_dir: Path) -> tuple[set[str], int]:
    """The array-job rules and the array limit of a profile."""
    profile = yaml.safe_load((Path(profile_dir) / "config.yaml").read_text()) or {}
    spec = str(profile.get("slurm-array-jobs") or "")
    rules = {r.strip() for r in spec.replace(";", ",").split(",") if r.strip()}
    return rules, int(profile.get("slurm-array-limit", 1000))


def count(dryrun_output: str, array_rules: set[str] = frozenset(), array_limit: int = 1000) -> Submissions:
    """Count the submissions in the text of ``snakemake -n --profile ...``."""
    subs = Submissions(array_rules=set(array_rules), array_limit=array_limit)
    not_submitted = NORUN_RULES | local_rules()
    in_group = False
    for line in dryrun_output.splitlines():
        if m := _GROUP.match(line):
            subs.groups[m.group(1)] += 1
            in_group = True
        elif m := _RULE.match(line):
            in_group = False
            if m.group(1) not in not_submitted:
                subs.rules[m.group(1)] += 1
        elif in_group and re.match(r"^ {4}rule \S+:$", line):
            subs.grouped_jobs += 1
        elif line.startswith("Job stats:"):
            in_group = False
    return subs


def dry_run(*args: str, profile: Path = ROOT / "workflow" / "profiles" / "slurm", env: dict | None = None,
            cwd: Path = ROOT) -> str:
    """Run ``snakemake -n --workflow-profile PROFILE ARGS`` and return its output (stdout + stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--workflow-profile", str(profile), "--snakefile", str(ROOT / "workflow" / "Snakefile"),
         *args],
        cwd=cwd, capture_output=True, text=True, env=env, timeout=600,
    )
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake -n failed ({proc.returncode}):\n{out[-6000:]}")
    return out


def main(argv: list[str]) -> int:
    profile = ROOT / "workflow" / "profiles" / "slurm"
    if argv[:1] in (["--profile"], ["--workflow-profile"]):
        profile, argv = Path(argv[1]), argv[2:]
    subs = count(dry_run(*argv, profile=profile), *profile_settings(profile))
    for kind, n in subs.per_kind().items():
        print(f"  {kind:<28} {n:>6}")
    print(f"{subs.jobs} jobs -> {subs.total} SLURM submissions")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
