"""The ``conformance`` command line.

Exit codes: 0 nothing diverged, 1 something diverged, 2 usage or
configuration error (an unknown or unimportable candidate included), 3
internal error (including scenarios our own reference could not run).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from conformance import html_report, report
from conformance.campaign import Campaign, CampaignResult, replay
from conformance.explain import VersionExplainer
from conformance.isolation import WorkerPair, WorkerProcess, WorkerStartError, split_spec
from conformance.scenario import ScenarioError, load_file
from conformance.targets import KINDS

EXIT_OK, EXIT_DIVERGED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
DEFAULT_EXAMPLES = 200
#: How scenarios are made: by Hypothesis from ``strategies``, or by the seeded fuzzer (``conformance.fuzz``).
MODES = ("hypothesis", "fuzz")
#: Of a ``--budget``, what is kept for writing the reports and stopping the workers.
BUDGET_MARGIN_S = 0.5


class UsageError(Exception):
    """A problem with what the user asked for; exit 2 with the message."""


def main(argv: Optional[Sequence[str]] = None) -> int:
    started = time.monotonic()
    parser = _parser()
    args = parser.parse_args(argv)
    args.started = started
    try:
        return args.handler(args)
    except (UsageError, WorkerStartError, ScenarioError) as exc:
        print(f"conformance: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("conformance: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        import traceback

        traceback.print_exc()
        print(f"conformance: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conformance", description="Differential conformance testing of asyncio runners against a reference."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="generate scenarios and compare a candidate with the reference")
    _target_options(run)
    budget = run.add_mutually_exclusive_group()
    budget.add_argument("--examples", type=_positive_int, help=f"scenarios to generate (default {DEFAULT_EXAMPLES})")
    budget.add_argument("--budget", type=_positive_float, metavar="SECONDS", help="time budget, shrinking included")
    run.add_argument("--seed", type=_non_negative_int, help="generation seed (default: random, printed)")
    run.add_argument(
        "--mode",
        choices=MODES,
        default="hypothesis",
        help="hypothesis (default: the richer generator) or fuzz (a seeded PRNG: about twice the checks per second)",
    )
    run.set_defaults(handler=_run)

    again = commands.add_parser("replay", help="re-run saved scenarios (a scenario file, a list, or a findings JSON)")
    again.add_argument("file", help="scenario JSON file, or a directory (a corpus: every *.json in it, sorted)")
    _target_options(again)
    again.set_defaults(handler=_replay)

    bite = commands.add_parser("selftest", help="run the campaign against every mutant of the catalogue")
    per_mutant = bite.add_mutually_exclusive_group()
    per_mutant.add_argument("--budget", type=_positive_float, metavar="SECONDS", help="time budget per mutant")
    per_mutant.add_argument("--examples", type=_positive_int, help="scenarios per mutant, instead of a time budget")
    bite.add_argument("--seed", type=_non_negative_int, help="generation seed (default: random, printed)")
    bite.add_argument("--mutant", action="append", metavar="NAME", help="only this mutant (repeatable)")
    bite.add_argument("--mode", choices=MODES, default="hypothesis", help="how scenarios are made, as for run")
    bite.add_argument("--timeout", type=_positive_float, help="per-scenario limit (s; default: adaptive, as for run)")
    bite.add_argument("--json", metavar="PATH", help="also write the outcomes as JSON")
    bite.set_defaults(handler=_selftest)

    reach = commands.add_parser(
        "coverage", help="which spec clauses and reference branches the generated scenarios reach (in-process)"
    )
    scenarios = reach.add_mutually_exclusive_group()
    scenarios.add_argument("--examples", type=_positive_int, help=f"scenarios to generate (default {DEFAULT_EXAMPLES})")
    scenarios.add_argument("--budget", type=_positive_float, metavar="SECONDS", help="time budget instead")
    reach.add_argument("--seed", type=_non_negative_int, help="generation seed (default: random, printed)")
    reach.add_argument("--mode", choices=MODES, default="hypothesis", help="how scenarios are made, as for run")
    reach.add_argument("--json", metavar="PATH", help="also write the counts and coverage as JSON")
    reach.add_argument("--spec", type=Path, metavar="PATH", help="the spec whose clauses count (default docs/spec.md)")
    reach.set_defaults(handler=_coverage)

    table = commands.add_parser("matrix", help="run several candidates with one seed and budget; one combined report")
    table.add_argument(
        "candidates", nargs="*", metavar="CANDIDATE", help="candidates to run (default: every installed built-in one)"
    )
    sizes = table.add_mutually_exclusive_group()
    sizes.add_argument("--examples", type=_positive_int, help=f"scenarios per candidate (default {DEFAULT_EXAMPLES})")
    sizes.add_argument("--budget", type=_positive_float, metavar="SECONDS", help="time budget per candidate")
    table.add_argument("--seed", type=_non_negative_int, help="generation seed (default: random, printed)")
    table.add_argument("--mode", choices=MODES, default="hypothesis", help="how scenarios are made, as for run")
    table.add_argument("--out", default=os.path.join("reports", "matrix"), help="directory for the reports")
    table.add_argument("--timeout", type=_positive_float, default=None, help="per-scenario limit (s; as for run)")
    table.add_argument("--strict-messages", action="store_true", help="also compare messages the runtime writes")
    table.set_defaults(handler=_matrix)

    render = commands.add_parser("report", help="render a findings or matrix JSON as HTML and Markdown (no re-run)")
    render.add_argument("findings", metavar="FINDINGS.json", help="a findings JSON (run, replay) or a matrix JSON")
    render.add_argument("--html", metavar="OUT", help="HTML page to write (default: FINDINGS with .html)")
    render.add_argument("--markdown", metavar="OUT", help="Markdown report to write (default: FINDINGS with .md)")
    render.set_defaults(handler=_report)

    known = commands.add_parser(
        "candidates", help="list the built-in real candidates: kind, installed version, how to install"
    )
    known.set_defaults(handler=_candidates)
    _expectations_and_corpus_commands(commands)
    return parser


def _target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--candidate",
        default="asyncio",
        help="built-in name or MODULE:ATTR, optionally @PYTHON to run it under that interpreter (default asyncio)",
    )
    parser.add_argument("--candidate-kind", choices=KINDS, help="force how the candidate is driven")
    parser.add_argument(
        "--reference",
        default=None,
        help="reference spec, optionally @PYTHON (default: reference, or reference.run for run functions, "
        "under the candidate's interpreter)",
    )
    parser.add_argument("--json", metavar="PATH", help="findings JSON (default reports/<candidate>.json)")
    parser.add_argument("--report", metavar="PATH", help="Markdown report (default reports/<candidate>.md)")
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=None,
        help="per-scenario limit (s; default: adaptive, 20 times the slowest healthy replies, at least 1 s)",
    )
    parser.add_argument("--strict-messages", action="store_true", help="also compare messages the runtime writes")
    _expectation_options(parser)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


# ----------------------------------------------------------- commands


def _start_pair(args: argparse.Namespace) -> tuple[WorkerPair, Dict[str, Any], Dict[str, Any]]:
    """Start the candidate first (its kind picks the default reference), then the reference.

    A spec may name the interpreter its worker runs under (``asyncio@python3.13``,
    see ``isolation.split_spec``); the default reference then runs under the
    candidate's interpreter too, so that it follows that Python version's
    behaviour (``reference.versions``) and only the candidate is compared.
    """
    candidate_name, candidate_python = split_spec(args.candidate)
    candidate = WorkerProcess(candidate_name, args.candidate_kind, python=candidate_python)
    candidate_info = candidate.start()["ready"]
    if args.reference is not None:
        reference_name, reference_python = split_spec(args.reference)
    else:
        reference_name = "reference.run" if candidate_info["kind"] == "run" else "reference"
        reference_python = candidate_python
    try:
        reference = WorkerProcess(reference_name, python=reference_python)
        reference_info = reference.start()["ready"]
    except BaseException:
        candidate.close()
        raise
    # The interpreter each side ran under: a report's reproducer runs the candidate there again.
    candidate_info = {**candidate_info, **{key: candidate.info.get(key, "") for key in ("python", "executable")}}
    reference_info = {**reference_info, **{key: reference.info.get(key, "") for key in ("python", "executable")}}
    return WorkerPair(reference, candidate), candidate_info, reference_info


def _run(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    examples = args.examples if args.examples is not None or args.budget is not None else DEFAULT_EXAMPLES
    # The budget counts from the command's start: starting the workers is part of it.
    deadline = None if args.budget is None else args.started + args.budget - BUDGET_MARGIN_S
    result, candidate_info, reference_info = _campaign(args, seed, examples, deadline)
    return _finish(args, result, candidate_info, reference_info, _settings(args, examples))


def _campaign(
    args: argparse.Namespace, seed: int, examples: Optional[int], deadline: Optional[float]
) -> tuple[CampaignResult, Dict[str, Any], Dict[str, Any]]:
    """One candidate's campaign (``args.candidate``), ending by ``deadline`` (monotonic) if given."""
    from conformance.fuzz import Fuzzer
    from strategies import scenarios

    pair, candidate_info, reference_info = _start_pair(args)
    explainer = _version_explainer(args, candidate_info, reference_info)
    try:
        with pair:
            progress = _Progress()
            source = Fuzzer if args.mode == "fuzz" else scenarios
            campaign = Campaign(
                pair,
                source(candidate_info["kind"]),
                seed,
                examples=examples,
                budget_s=None if deadline is None else deadline - time.monotonic(),
                timeout_s=args.timeout,
                strict_messages=args.strict_messages,
                progress=progress,
                explainer=explainer,
            )
            result = campaign.run()
            progress.done()
    finally:
        if explainer is not None:
            explainer.close()
    return result, candidate_info, reference_info


def _version_explainer(
    args: argparse.Namespace, candidate_info: Dict[str, Any], reference_info: Dict[str, Any]
) -> Optional[VersionExplainer]:
    """When the two sides run different Python releases, what tells the spec's version differences apart."""
    release = lambda info: ".".join(str(info.get("python", "")).split(".")[:2])  # noqa: E731
    candidate_python = split_spec(args.candidate)[1]
    reference_python = split_spec(args.reference)[1] if args.reference is not None else candidate_python
    if release(candidate_info) == release(reference_info):
        if not _before_runner(candidate_info) or args.reference is not None:
            return None
        # A backport on an interpreter without asyncio.Runner (3.9, 3.10, PyPy 3.9): the reference there
        # runs the Runner's logic on that release's asyncio (no Task.uncancel, no context= for tasks), and
        # a backport that behaves as the driver's CPython (3.11+) does is doing its job: a version
        # difference, not a divergence. Anything the newer release does not reproduce stays a divergence.
        return VersionExplainer(
            reference_python, None, reference_info["kind"], candidate_info["kind"], strict_messages=args.strict_messages
        )
    return VersionExplainer(
        reference_python,
        candidate_python,
        reference_info["kind"],
        candidate_info["kind"],
        strict_messages=args.strict_messages,
    )


def _before_runner(info: Dict[str, Any]) -> bool:
    """Whether a worker's interpreter predates asyncio.Runner (Python 3.11)."""
    try:
        major, minor = (int(part) for part in str(info.get("python", "")).split(".")[:2])
    except ValueError:
        return False  # not a Python version: an exec: worker in another language
    return (major, minor) < (3, 11)


def _settings(args: argparse.Namespace, examples: Optional[int]) -> Dict[str, Any]:
    return {
        "examples": examples,
        "budget_s": args.budget,
        "mode": args.mode,
        "timeout_s": args.timeout,
        "strict": args.strict_messages,
    }


def _matrix(args: argparse.Namespace) -> int:
    """Every candidate of the list (default: every installed built-in one), one report each, and the matrix."""
    from conformance import candidates, matrix

    listing = candidates.listing()
    names = args.candidates or [row["name"] for row in listing if _installed(row)]
    known = {row["name"] for row in listing} | {"asyncio", "asyncio.run", "reference", "reference.run"}
    unknown = [name for name in names if split_spec(name)[0] not in known and ":" not in name]
    if unknown:
        raise UsageError(f"unknown candidate(s): {', '.join(unknown)} (see 'conformance candidates')")
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    examples = args.examples if args.examples is not None or args.budget is not None else DEFAULT_EXAMPLES
    out = Path(args.out)
    rows: List[matrix.Row] = []
    any_diverged = False
    for name in names:
        one = argparse.Namespace(**vars(args), candidate=name, candidate_kind=None, reference=None)
        deadline = None if args.budget is None else time.monotonic() + args.budget
        try:
            result, candidate_info, reference_info = _campaign(one, seed, examples, deadline)
        except WorkerStartError as exc:
            rows.append(matrix.Row(name, unavailable=str(exc)))
            print(f"{name}: not run: {exc}")
            continue
        document = report.build(result, candidate_info, reference_info, _settings(one, examples))
        path = out / f"{_slug(name)}.json"
        _write(path, report.dumps(document))
        _write(path.with_suffix(".md"), report.markdown(document))
        _write(path.with_suffix(".html"), html_report.render(document))
        rows.append(matrix.Row(name, document, report_path=path.name))
        any_diverged = any_diverged or bool(result.divergences)
        print(f"{name}: {result.examples} scenarios, {len(result.divergences)} divergence group(s)")
    settings = {**_settings(args, examples), "seed": seed}
    combined = matrix.build(rows, settings)
    _write(out / "matrix.json", matrix.dumps(combined))
    _write(out / "matrix.md", matrix.markdown(combined))
    reports = {row.candidate: row.report for row in rows if row.report is not None}
    _write(out / "matrix.html", html_report.render(combined, reports))
    print(f"wrote {out / 'matrix.json'}, {out / 'matrix.md'} and {out / 'matrix.html'}")
    return EXIT_DIVERGED if any_diverged else EXIT_OK


def _installed(row: Dict[str, str]) -> bool:
    return row["kind"] != "-" and row["version"] != "not installed"


def _slug(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", spec).strip("_") or "candidate"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _replay(args: argparse.Namespace) -> int:
    scenarios = _replayed_scenarios(args.file)
    pair, candidate_info, reference_info = _start_pair(args)
    explainer = _version_explainer(args, candidate_info, reference_info)
    try:
        with pair:
            result = replay(pair, scenarios, args.timeout, args.strict_messages, explainer)
    finally:
        if explainer is not None:
            explainer.close()
    settings = {"replayed": args.file, "timeout_s": args.timeout, "strict": args.strict_messages}
    return _finish(args, result, candidate_info, reference_info, settings)


def _selftest(args: argparse.Namespace) -> int:
    from conformance import selftest

    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    try:
        mutants = selftest.select(args.mutant)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    return selftest.command(mutants, seed, args.budget, args.examples, args.timeout, args.mode, args.json)


def _coverage(args: argparse.Namespace) -> int:
    from conformance import clauses, coverage_measure, coverage_report
    from conformance.fuzz import Fuzzer
    from strategies import scenarios

    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    examples = args.examples if args.examples is not None or args.budget is not None else DEFAULT_EXAMPLES
    # The scenarios `run` makes for its default candidate (asyncio, a runner).
    source = (Fuzzer if args.mode == "fuzz" else scenarios)("runner")
    settings = {"examples": examples, "budget_s": args.budget, "mode": args.mode}
    try:
        return coverage_report.command(source, seed, examples, args.budget, args.json, args.spec, settings)
    except (clauses.SpecError, coverage_measure.CoverageUnavailable) as exc:
        raise UsageError(str(exc)) from None


def _report(args: argparse.Namespace) -> int:
    """Render existing findings (a run's or a matrix's) again, as HTML and Markdown: nothing is re-run."""
    from conformance import matrix

    source = Path(args.findings)
    try:
        document, reports = html_report.load(source)
    except html_report.ReportError as exc:
        raise UsageError(str(exc)) from None
    html_path = Path(args.html) if args.html else _html_next_to(source)
    markdown_path = Path(args.markdown) if args.markdown else source.with_suffix(".md")
    try:  # both rendered before either is written: a document that breaks one leaves no half-written pair
        text = matrix.markdown(document) if "rows" in document else report.markdown(document)
        page = html_report.render(document, reports)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise UsageError(f"{source}: not findings this version can render ({type(exc).__name__}: {exc})") from None
    _write(html_path, page)
    _write(markdown_path, text)
    print(f"wrote {html_path} and {markdown_path}")
    return EXIT_OK


def _html_next_to(path: Path) -> Path:
    """The HTML page's path next to a report or findings file: same name, ``.html`` (never the file itself)."""
    return path.with_name(path.name + ".html") if path.suffix == ".html" else path.with_suffix(".html")


def _candidates(args: argparse.Namespace) -> int:
    """Every built-in candidate, from the installed distributions' metadata: nothing is imported here."""
    from conformance import candidates

    rows = candidates.listing()
    widths = {key: max(len(key), *(len(row[key]) for row in rows)) for key in ("name", "kind", "version")}
    print("  ".join(key.upper().ljust(widths[key]) for key in widths) + "  INSTALL")
    for row in rows:
        print("  ".join(row[key].ljust(widths[key]) for key in widths) + "  " + row["install"])
    return EXIT_OK


def _finish(
    args: argparse.Namespace,
    result: CampaignResult,
    candidate_info: Dict[str, Any],
    reference_info: Dict[str, Any],
    settings: Dict[str, Any],
) -> int:
    document = report.build(result, candidate_info, reference_info, settings)
    gate = _gate(args, document)  # adds document["expectations"] when --expectations is given
    slug = _slug(args.candidate)
    json_path = Path(args.json or os.path.join("reports", f"{slug}.json"))
    markdown_path = Path(args.report or os.path.join("reports", f"{slug}.md"))
    _write(json_path, report.dumps(document))
    _write(markdown_path, report.markdown(document))
    html_path = _html_next_to(markdown_path)
    _write(html_path, html_report.render(document))
    _print_summary(result, document, json_path, markdown_path)
    print(f"wrote {html_path}")
    if result.invalid:
        return EXIT_INTERNAL
    if gate is not None:
        print(gate.summary())
        return EXIT_OK if (gate.passed_strictly if args.strict_expectations else gate.passed) else EXIT_DIVERGED
    return EXIT_DIVERGED if result.divergences else EXIT_OK


def _print_summary(result: CampaignResult, document: Dict[str, Any], json_path: Path, markdown_path: Path) -> None:
    out: List[str] = [
        f"candidate {document['candidate']} vs reference {document['reference']}: "
        f"{result.examples} scenarios, seed {result.seed}, {result.elapsed_s:.1f} s",
        "outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(result.statuses.items())),
        f"clauses exercised ({len(result.clauses)}): " + " ".join(sorted(result.clauses)),
    ]
    if result.divergences:
        out.append(f"{len(result.divergences)} divergence group(s):")
        for group in sorted(result.divergences, key=lambda g: -g.count):
            out.append(
                f"  {group.clause:5} {group.category:16} {group.count:5} scenarios, "
                f"smallest has {group.smallest.scenario.size()} parts"
            )
    else:
        out.append("no divergence")
    if result.flaky:
        out.append(f"{len(result.flaky)} flaky group(s) (outcome changes on re-run; not counted as divergences)")
    for group in sorted(result.version_differences, key=lambda g: -g.count):
        out.append(f"  version difference the spec predicts: {group.clause} {group.category}, {group.count} scenarios")
    if result.invalid:
        out.append(f"INTERNAL: the reference could not run {len(result.invalid)} scenario(s); see the report")
    out.append(f"wrote {json_path} and {markdown_path}")
    print("\n".join(out))


class _Progress:
    """A progress line on stderr: rewritten in place on a terminal, every 10 s otherwise."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.last = 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, result: CampaignResult) -> None:
        now = time.monotonic()
        if now - self.last < (0.2 if self.tty else 10.0):
            return
        self.last = now
        line = (
            f"[{now - self.start:6.1f}s] {result.examples} scenarios, "
            f"{len(result.groups)} divergence group(s), {result.statuses.get('unsupported', 0)} unsupported"
        )
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.tty and self.last:
            print(file=sys.stderr)


# ------------------------------------------ expectations and the regression corpus


def _expectation_options(parser: argparse.ArgumentParser) -> None:
    """``--expectations`` for run and replay: gate the exit code on known divergences (conformance.expectations)."""
    parser.add_argument(
        "--expectations",
        type=_expectations_file,
        metavar="FILE",
        help="TOML file of known divergences: exit 0 if every finding is expected here, 1 if one is new",
    )
    parser.add_argument(
        "--strict-expectations",
        action="store_true",
        help="with --expectations, also exit 1 when an expectation that applies here no longer happens (stale)",
    )


def _expectations_file(path: str) -> Any:
    """Read the file as the options are parsed: a malformed one fails before the run, not after it."""
    from conformance import expectations

    try:
        return expectations.load(path)
    except expectations.ExpectationsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _expectations_and_corpus_commands(commands: Any) -> None:
    """``conformance expectations update`` and ``conformance corpus add``."""
    known = commands.add_parser("expectations", help="write or merge an expectations file from a run's findings")
    actions = known.add_subparsers(dest="action", required=True)
    update = actions.add_parser("update", help="add every finding no entry expects; keep entries that still hold")
    update.add_argument("--from", dest="findings", required=True, metavar="FINDINGS.json", help="a findings JSON")
    update.add_argument("--out", required=True, metavar="FILE", help="expectations file to write (merged into)")
    update.set_defaults(handler=_expectations_update)

    kept = commands.add_parser("corpus", help="the regression corpus: a directory of shrunk scenarios")
    operations = kept.add_subparsers(dest="operation", required=True)
    store = operations.add_parser("add", help="store scenarios (or each group's smallest one of findings) in DIR")
    store.add_argument("directory", metavar="DIR")
    store.add_argument("files", nargs="+", metavar="FILE", help="scenario JSON or findings JSON")
    store.add_argument("--name", help="prefix of the stored files' names (before the content hash)")
    store.set_defaults(handler=_corpus_add)


def _gate(args: argparse.Namespace, document: Dict[str, Any]) -> Optional[Any]:
    """With ``--expectations``, judge the findings (for the candidate's Python and this OS) into the document."""
    if not getattr(args, "expectations", None):
        return None
    from conformance import expectations

    known = args.expectations  # loaded and checked by _expectations_file
    if known.candidate is not None and known.candidate != document.get("candidate"):
        print(f"note: {known.source} is for {known.candidate}, this run is of {document.get('candidate')}")
    gate = known.gate(document, expectations.python_of(document), expectations.system_of(document))
    document["expectations"] = {"file": known.source, **gate.to_json()}
    return gate


def _expectations_update(args: argparse.Namespace) -> int:
    from conformance import expectations

    try:
        document = expectations.read_findings(args.findings)
        existing = expectations.load(args.out) if Path(args.out).exists() else None
    except expectations.ExpectationsError as exc:
        raise UsageError(str(exc)) from None
    updated = expectations.update(existing, document)
    _write(Path(args.out), expectations.dump(updated))
    todo = sum(entry.reason == expectations.TODO_REASON for entry in updated.entries)
    print(f"wrote {args.out}: {len(updated.entries)} expectation(s), {todo} of them to explain (reason TODO)")
    return EXIT_OK


def _corpus_add(args: argparse.Namespace) -> int:
    from conformance import corpus

    for path, written in corpus.add(Path(args.directory), args.files, args.name):
        print(f"{'added' if written else 'already there'}: {path}")
    return EXIT_OK


def _replayed_scenarios(path: str) -> List[Any]:
    """A scenario file's scenarios, or a corpus directory's (every ``*.json``, sorted by name)."""
    if os.path.isdir(path):
        from conformance import corpus

        return corpus.load(Path(path))
    return load_file(path)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
