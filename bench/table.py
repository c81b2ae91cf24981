"""The printed report: one section per part, then the targets."""

from __future__ import annotations

from collections.abc import Sequence

from bench.decode_cost import CONTENDERS, KINDS, SIZES, DecodeCost
from bench.degraded import DegradedReads
from bench.first_feedback import FirstFeedback
from bench.latency import Latency
from bench.memory import Memory
from bench.read_rates import ReadRates
from bench.results import Results
from bench.startup import Startup
from bench.targets import Target


def render(results: Results, targets: Sequence[Target]) -> str:
    machine = results.machine
    lines = [
        f"ticket-scanner bench ({'quick' if results.quick else 'full'} run), {machine.date}",
        f"{machine.cpu}, {machine.cores} cores, Python {machine.python}, "
        f"zxing-cpp {machine.zxing_cpp}, pyzbar {machine.pyzbar} (ZBar {machine.zbar})",
        f"commit {machine.git_commit}; samples {results.samples}",
    ]
    r = results
    sections = {
        "decode_cost": _decode_cost(r.decode_cost) if r.decode_cost else None,
        "read_rates": _read_rates(r.read_rates) if r.read_rates else None,
        "degraded": _degraded(r.degraded) if r.degraded else None,
        "latency": _latency(r.latency) if r.latency else None,
        "first_feedback": _first_feedback(r.first_feedback) if r.first_feedback else None,
        "startup": _startup(r.startup) if r.startup else None,
        "memory": _memory(r.memory) if r.memory else None,
    }
    for part, section in sections.items():
        lines.append("")
        if section is None:
            lines.append(f"{part}: FAILED: {results.errors.get(part, 'not run')}")
        else:
            lines += section
    lines += ["", "Targets"]
    lines += [
        f"  {t.name:<38} {_number(t.measured, t.unit):>6} {t.unit:<16} limit {t.limit:g}  "
        f"{'ok' if t.met else 'MISSED'}"
        for t in targets
    ]
    if results.errors:
        lines.append(f"  not checked: the failed parts ({', '.join(sorted(results.errors))})")
    return "\n".join(lines)


def _decode_cost(cost: DecodeCost) -> list[str]:
    sizes = [f"{w}x{h}" for w, h in SIZES]
    lines = [
        "1. Decode cost per frame, ms: median / p95 "
        f"({_count(cost.repetitions, 'repetition')}; {cost.frames['empty']} empty and "
        f"{cost.frames['qr']} QR frames at each size)",
        f"  {'':<11}" + "".join(f"{kind + ' ' + size:>16}" for kind in KINDS for size in sizes),
    ]
    for contender in CONTENDERS:
        cells = []
        for kind in KINDS:
            for size in sizes:
                timing = cost.timing(contender, kind, size)
                cells.append(f"{timing.median_ms:>7.2f} /{timing.p95_ms:>6.2f}")
        lines.append(f"  {contender:<11}" + "".join(f"{cell:>16}" for cell in cells))
    lines.append(
        f"  auto / bare zxing-cpp, median on empty 640x480: {cost.auto_over_bare_zxing:.3f}x"
    )
    return lines


def _read_rates(rates: ReadRates) -> list[str]:
    lines = [
        f"2. Read rate on the sample photos (budget {rates.budget_s:g} s a photo, as `decode`)",
        f"  {'decoder':<8} {'read':>9} {'rate':>7} {'false positives':>16} {'time':>8}",
    ]
    for row in rates.decoders:
        lines.append(
            f"  {row.decoder:<8} {f'{row.read}/{row.with_code}':>9} {row.read_rate:>7.1%} "
            f"{f'{row.false_positives}/{row.without_code}':>16} {row.seconds:>7.2f}s"
        )
    stats = rates.auto_second_look
    by_step = ", ".join(f"{step} {n}" for step, n in sorted(stats.rescued_by.items())) or "none"
    lines.append(
        f"  auto's second look: {stats.second_looks} of {stats.frames} photos, "
        f"rescued {stats.rescued} ({by_step}), out of time {stats.out_of_time}"
    )
    return lines


def _degraded(rows: list[DegradedReads]) -> list[str]:
    decoders = list(dict.fromkeys(row.decoder for row in rows))
    first = rows[0]
    lines = [
        f"2b. Read rate on the sample photos made harder ({first.with_code} with a code; "
        f"false positives on the {first.without_code} without)",
        f"  {'':<13}" + "".join(f"{name:>14}" for name in decoders),
    ]
    for degradation in dict.fromkeys(row.degradation for row in rows):
        cells = [
            f"{row.read:>4}/{row.with_code} fp {row.false_positives}"
            for name in decoders
            for row in rows
            if (row.degradation, row.decoder) == (degradation, name)
        ]
        lines.append(f"  {degradation:<13}" + "".join(f"{cell:>14}" for cell in cells))
    return lines


def _latency(latency: Latency) -> list[str]:
    timing = latency.timing
    counts = ", ".join(f"{verdict} {count}" for verdict, count in latency.verdict_counts.items())
    return [
        "3. Scan latency through the whole loop, frame captured -> feedback started "
        "(sandbox in its own process, 30 fps)",
        f"  {latency.verdicts} verdicts for {latency.guests} guests: "
        f"median {timing.median_ms:.1f} ms, p95 {timing.p95_ms:.1f} ms, max {timing.max_ms:.1f} ms",
        f"  frames: {latency.frames_captured} captured, {latency.frames_decoded} decoded, "
        f"{latency.frames_dropped} dropped, in {latency.seconds:.1f} s",
        f"  verdicts: {counts}",
    ]


def _first_feedback(feedback: FirstFeedback) -> list[str]:
    lines = [
        "3b. Decode -> first feedback (CHECKING or the verdict) while every answer is delayed "
        f"(sandbox fault 'slow', {feedback.guests_per_delay} guests per delay), ms",
        f"  {'delay':>7} {'first median':>13} {'first p95':>10} {'verdict median':>15} "
        f"{'CHECKING shown':>15}",
    ]
    for row in feedback.rows:
        lines.append(
            f"  {row.delay_s * 1000:>5.0f}ms {row.first_feedback.median_ms:>13.1f} "
            f"{row.first_feedback.p95_ms:>10.1f} {row.verdict.median_ms:>15.1f} "
            f"{row.checking_shown:>9} of {row.first_feedback.n}"
        )
    return lines


def _startup(startup: Startup) -> list[str]:
    lines = [
        f"4. Start-up of `ticket-scanner run` ({startup.frames} frames of images: at 30 fps, "
        f"{_count(len(startup.runs), 'run')})",
        f"  {'run':<4} {'first frame':>12} {'peak RSS':>10} {'frames decoded':>15} {'exit':>5}",
    ]
    for number, run in enumerate(startup.runs, start=1):
        lines.append(
            f"  {number:<4} {run.first_frame_s:>11.3f}s {run.peak_rss_mb:>7.1f} MB "
            f"{run.frames_decoded:>15} {run.exit_code:>5}"
        )
    lines.append(
        f"  median first frame {startup.median_first_frame_s:.3f} s, "
        f"max peak RSS {startup.max_peak_rss_mb:.1f} MB"
    )
    return lines


def _memory(memory: Memory) -> list[str]:
    def mb(kib: int) -> str:
        return f"{kib * 1024 / 1e6:.1f} MB"

    return [
        f"5. Memory over {memory.frames} frames (fresh process, unpaced, a code every 100 frames)",
        f"  RSS after {memory.early_frames} frames {mb(memory.early_rss_kib)}, "
        f"after {memory.frames} {mb(memory.final_rss_kib)}; growth after frame "
        f"{memory.warm_up_frames}: {memory.growth_kib_per_1000:+.2f} KiB per 1000 frames "
        f"(limit {memory.growth_limit_kib_per_1000:g})",
        f"  frames: {memory.frames_decoded} decoded, {memory.frames_dropped} dropped, "
        f"{memory.verdicts} verdicts, in {memory.seconds:.1f} s",
    ]


def _number(value: float, unit: str) -> str:
    """Three significant digits, never an exponent: 0.23, 4.37, 54.9, 175; ratios as 1.017."""
    if unit == "x":
        return f"{value:.3f}"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
