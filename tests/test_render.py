"""The CLI's own table layout (the timeline of `inspect`, which may hold thousands of steps)."""

from __future__ import annotations

from rich.console import Console

from zenaton_cli.render import _grid, _grid_plain


def _lines(columns: tuple[str, ...], rows: list[list[tuple[str, str | None]]]) -> list[str]:
    console = Console(width=200, soft_wrap=True, color_system=None)
    with console.capture() as captured:
        console.print(_grid(columns, rows), end="")
    return captured.get().splitlines()


def test_columns_are_as_wide_as_their_widest_cell_by_display_width() -> None:
    lines = _lines(("pos", "name", "status"), [[("1", None), ("送信する", None), ("completed", "green")],
                                               [("12", None), ("Ship", None), ("failed", "red")]])
    assert lines == [
        " pos  name      status",
        " 1    送信する  completed",
        " 12   Ship      failed",
    ]


def test_the_header_is_bold_and_a_status_keeps_its_colour_on_a_terminal() -> None:
    console = Console(width=200, soft_wrap=True, force_terminal=True, color_system="standard")
    with console.capture() as captured:
        console.print(_grid(("status",), [[("failed", "red")]]), end="")
    text = captured.get()
    assert "\x1b[1mstatus\x1b[0m" in text and "\x1b[31mfailed\x1b[0m" in text


def test_the_plain_grid_for_a_pipe_is_the_styled_grid_without_its_styles() -> None:
    columns = ("pos", "name", "status", "result")
    rows = [
        [("1", None), ("Noop", None), ("completed", "green"), ("0", None)],
        [("12", None), ("日本語の名前", None), ("failed", "red"), ("tab\there", None)],
        [("-", None), ("é", None), ("waiting", "yellow"), ("", None)],
    ]
    assert _grid_plain(columns, rows) == _grid(columns, rows).plain
