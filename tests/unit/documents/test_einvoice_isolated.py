"""extract_isolated: a child that crashes, hogs memory or hangs gives a warning; the caller lives on."""

from __future__ import annotations

import asyncio
import time

from sandbox import einvoice as gen
from services.documents.einvoice import extract, extract_isolated
from services.documents.einvoice.isolated import run_in_child
from tests.unit.documents import einvoice_pdfs as pdfs
from tests.unit.documents import einvoice_targets as targets
from tests.unit.documents.einvoice_expect import assert_matches, blank_pdf


def _codes(result: object) -> list[str]:
    return [w.code for w in result.warnings]  # type: ignore[attr-defined]


def test_same_result_as_in_process() -> None:
    pdf = gen.facturx_pdf(gen.four_rates_spec(), "en16931", blank_pdf())
    isolated = asyncio.run(extract_isolated(pdf, filename="a.pdf"))
    assert isolated == extract(pdf)
    assert_matches(isolated.invoice, gen.four_rates_spec(), "en16931")


def test_a_crashing_child_is_a_warning_and_the_next_call_works() -> None:
    crashed = run_in_child(targets.abort, b"x")
    assert crashed.source == "none" and _codes(crashed) == ["extraction_crashed"]
    assert "SIGABRT" in crashed.warnings[0].message
    after = asyncio.run(extract_isolated(gen.cii_xml(gen.credit_note_spec(), "basic")))
    assert_matches(after.invoice, gen.credit_note_spec(), "basic")


def test_memory_limit_kills_a_hog() -> None:
    started = time.monotonic()
    result = run_in_child(targets.hog, b"x", memory_mb=256, timeout_s=30)
    assert _codes(result) == ["extraction_crashed"]
    assert "256 MB" in result.warnings[0].message
    assert time.monotonic() - started < 30  # the limit stopped it, not the deadline
    assert run_in_child(targets.echo, b"x", filename="still.pdf").attachment == "still.pdf"


def test_deadline_kills_a_hang() -> None:
    started = time.monotonic()
    result = run_in_child(targets.hang, b"x", timeout_s=1.5)
    assert _codes(result) == ["extraction_timeout"]
    assert time.monotonic() - started < 10
    assert run_in_child(targets.echo, b"x", filename="still.pdf").attachment == "still.pdf"


def test_a_decompression_bomb_under_a_tight_memory_limit() -> None:
    # 67 kB of PDF whose factur-x.xml inflates to 70 MB: in 128 MB of address space the inflate
    # cannot even get its buffer. Whatever gives first, the caller reads one warning.
    bomb = pdfs.flate_bomb("factur-x.xml", 70_000_000)
    assert len(bomb) < 200_000
    result = asyncio.run(extract_isolated(bomb, memory_mb=128))
    assert result.source == "none" and result.invoice is None
    assert _codes(result)[0] in {"attachment_unreadable", "extraction_crashed", "extraction_memory"}
    ok = asyncio.run(extract_isolated(gen.cii_xml(gen.wholesaler_spec(200), "en16931")))
    assert ok.invoice is not None and len(ok.invoice.lines) == 200


def test_concurrent_calls() -> None:
    async def both() -> list[object]:
        return list(await asyncio.gather(*(extract_isolated(gen.cii_xml(gen.four_rates_spec(), p))
                                           for p in ("minimum", "basic", "extended"))))

    results = asyncio.run(both())
    assert [r.invoice.profile for r in results] == ["MINIMUM", "BASIC", "EXTENDED"]  # type: ignore[attr-defined]


def test_a_worker_serves_many_documents_and_a_failed_one_is_replaced() -> None:
    first = run_in_child(targets.pid, b"x").attachment
    assert run_in_child(targets.pid, b"x").attachment == first  # kept: no process start per document
    assert _codes(run_in_child(targets.abort, b"x")) == ["extraction_crashed"]
    replaced = run_in_child(targets.pid, b"x").attachment
    assert replaced != first
    assert _codes(run_in_child(targets.hang, b"x", timeout_s=0.5)) == ["extraction_timeout"]
    assert run_in_child(targets.pid, b"x").attachment not in (first, replaced)


def test_workers_give_the_cpu_to_collection() -> None:
    import os

    from services.documents.einvoice.isolated import WORKER_NICENESS

    here = os.nice(0)
    (reported,) = run_in_child(targets.niceness, b"x").warnings
    assert int(reported.message) == min(19, here + WORKER_NICENESS) > here


def test_ctrl_c_is_the_services_to_handle_not_the_workers() -> None:
    answered = run_in_child(targets.interrupt_self, b"x")
    assert answered.attachment == "still here" and not answered.warnings, answered
