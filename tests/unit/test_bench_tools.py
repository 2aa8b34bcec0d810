"""``streamml bench TOOL``: every tool is reachable from the command, with its own flags."""

from __future__ import annotations

import pytest

from services.cli.bench.tools import TOOLS
from services.cli.main import main


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_each_tool_answers_its_own_help(tool: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["bench", tool, "--help"])
    assert exited.value.code == 0
    assert f"usage: streamml bench {tool}" in capsys.readouterr().out


def test_the_bench_help_lists_every_tool(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    listed = capsys.readouterr().out
    assert all(f"  {tool} " in listed for tool in TOOLS)


def test_pipeline_flags_before_a_tool_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--no-peers", "checkpoint"]) == 2
    assert "--quick, --no-peers belong to the pipeline benchmark" in capsys.readouterr().err


def test_an_unknown_tool_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["bench", "parrity"])
    assert exited.value.code == 2
    assert "invalid choice: 'parrity'" in capsys.readouterr().err


def test_a_tools_flags_are_its_own_even_when_the_pipeline_benchmark_has_them(
        capsys: pytest.CaptureFixture[str]) -> None:
    """``--rates`` and ``--drain`` are flags of both the tool and the pipeline benchmark."""
    with pytest.raises(SystemExit) as exited:
        main(["bench", "features", "--drain", "x", "--rates", "1000"])
    assert exited.value.code == 2
    assert "streamml bench features: error: argument --drain: invalid int value: 'x'" in (
        capsys.readouterr().err)
