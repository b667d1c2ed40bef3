"""Progress of long commands on stderr, on a terminal and off one.

On a terminal, :func:`node.cli.common.progress_bar` draws rich's bar. Off one — cron, ``ssh``
without a TTY, ``2> file``, a pipe — rich draws nothing at all, and a rebuild of a large holder
looked hung for a minute. There the same :class:`CommandProgress` writes plain lines instead::

    travel_documents: 0 of 1,000,000 records evaluated (0%, 0 s)
    travel_documents: 100,000 of 1,000,000 records evaluated (10%, 6 s)
    …
    travel_documents: 1,000,000 of 1,000,000 records evaluated (100%, 52 s)
    travel_documents: writing, publishing

A task with a ``detail`` field says it instead of done/total, on the bar and in the lines
(``enlace ingest``: "encounters.csv: 120,000 rows read, 41,000 rows/s (30%, 3 s)", the share
being of the file's bytes).

A task gets a line when it first reports, each time it passes another tenth of its total, at
least every :data:`LINE_SECONDS` while it moves (for a task whose total is not known yet, or
whose count stands while its detail changes), and when it ends; :meth:`CommandProgress.stop`
writes the last state of a task not yet written.

Invariants: everything goes to the console given (stderr), never to stdout, which holds the
tables and ``--json``; a disabled progress writes nothing, on a terminal or not; the lines
are plain text (no markup, no colour codes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress, ProgressColumn, Task, TaskID
from rich.text import Text

#: A moving task gets a line at least this often, even between two tenths.
LINE_SECONDS = 10.0
#: A line each time a task passes another 1/STEPS of its total.
STEPS = 10


@dataclass
class _Written:
    """What the last line of one task said."""

    at: float
    completed: float
    step: int
    ended: bool
    status: str
    detail: str


class CountColumn(MofNCompleteColumn):
    """done/total, or the task's ``detail`` field when it has one (never parsed as markup)."""

    def render(self, task: Task) -> Text:
        detail = task.fields.get("detail")
        return Text(str(detail)) if detail else super().render(task)


def _duration(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole} s" if whole < 60 else f"{whole // 60} min {whole % 60:02d} s"


def redraws(console: Console) -> bool:
    """Whether a bar can redraw itself on ``console``: it writes to a terminal and its file is
    one. ``FORCE_COLOR`` or ``TTY_COMPATIBLE`` (set in CI and some cron setups to keep colour)
    make rich treat any file as a terminal; a bar redrawn into a log or a cron mail is a wall of
    escape sequences, so off a TTY the plain lines are written whatever they say, as they are
    on a ``dumb`` terminal."""
    if not console.is_terminal or console.is_dumb_terminal:
        return False
    isatty = getattr(console.file, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed file
        return False


class CommandProgress(Progress):
    """rich's :class:`~rich.progress.Progress`, which writes plain lines (``plain``) instead of
    the bar when ``console`` is not a terminal.

    A line names the task by ``label`` if given (then the task's description counts what is
    done: "matching: 2,000 of 10,000 elements"), else by the task's description, followed by
    ``unit`` ("travel_documents: 200,000 of 1,000,000 records evaluated"). A task's ``status``
    field gets a line of its own each time it changes to a non-empty text
    ("travel_documents: writing, publishing")."""

    def __init__(
        self,
        *columns: str | ProgressColumn,
        console: Console,
        label: str = "",
        unit: str = "",
        disable: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plain = not disable and not redraws(console)
        super().__init__(*columns, console=console, transient=True, disable=disable or self.plain)
        self.label, self.unit, self.clock = label, unit, clock
        self._written: dict[TaskID, _Written] = {}
        self._started: dict[TaskID, float] = {}
        self._lines_lock = threading.Lock()

    def update(
        self,
        task_id: TaskID,
        *,
        total: float | None = None,
        completed: float | None = None,
        advance: float | None = None,
        description: str | None = None,
        visible: bool | None = None,
        refresh: bool = False,
        **fields: Any,
    ) -> None:
        super().update(
            task_id,
            total=total,
            completed=completed,
            advance=advance,
            description=description,
            visible=visible,
            refresh=refresh,
            **fields,
        )
        if self.plain:
            self._report(task_id, final=False)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        """rich's ``advance`` (which ``track`` uses too), reported like :meth:`update`."""
        super().advance(task_id, advance)
        if self.plain:
            self._report(task_id, final=False)

    def add_task(
        self,
        description: str,
        start: bool = True,
        total: float | None = 100.0,
        completed: int = 0,
        visible: bool = True,
        *,
        started: float | None = None,
        **fields: Any,
    ) -> TaskID:
        """rich's ``add_task``; ``started`` (of :attr:`clock`, default now) is when the work
        the lines time began, if before the task was added."""
        task_id = super().add_task(
            description, start=start, total=total, completed=completed, visible=visible, **fields
        )
        self._started[task_id] = self.clock() if started is None else started
        return task_id

    def stop(self) -> None:
        super().stop()
        if self.plain:  # the last state of each task that has said something
            for task_id in list(self._written):
                self._report(task_id, final=True)

    def _report(self, task_id: TaskID, *, final: bool) -> None:
        with self._lines_lock:
            task = self._tasks.get(task_id)
            if task is None:
                return
            now = self.clock()
            total, done = task.total, task.completed
            ended = total is not None and done >= total
            step = int(done * STEPS // total) if total else (STEPS if ended else 0)
            status = str(task.fields.get("status") or "")
            detail = str(task.fields.get("detail") or "")
            last = self._written.get(task_id)
            if last is None:
                due = True
            elif final:
                due = done != last.completed or ended != last.ended
            else:
                due = (
                    (ended and not last.ended)
                    or step > last.step
                    or (
                        now - last.at >= LINE_SECONDS
                        and (done != last.completed or detail != last.detail)
                    )
                )
            lines = [self._line(task, now - self._started.get(task_id, now))] if due else []
            if status and status != (last.status if last else ""):
                lines.append(f"{self._name(task)}: {status}")
            if not lines:
                return
            if last is None or due:
                self._written[task_id] = _Written(now, done, step, ended, status, detail)
            else:
                last.status = status
            for line in lines:
                self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def _name(self, task: Task) -> str:
        return self.label or task.description

    def _line(self, task: Task, elapsed: float) -> str:
        unit = self.unit or (task.description if self.label else "")
        count = f"{int(task.completed):,}"
        if task.total is not None:
            share = 100 if not task.total else int(task.completed * 100 // task.total)
            count += f" of {int(task.total):,}"
            timing = f"{share}%, {_duration(elapsed)}"
        else:
            timing = _duration(elapsed)
        count += f" {unit}" if unit else ""
        detail = str(task.fields.get("detail") or "")
        return f"{self._name(task)}: {detail or count} ({timing})"
