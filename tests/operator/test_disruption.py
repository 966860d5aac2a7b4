"""Which Machines a MachineDeployment's scale-down removes: never a pinned one."""

from __future__ import annotations

from controller.actuators.disruption import MachineView, choose_machines_to_delete


def machine(name: str, node: str = "", created: str = "", **flags: bool) -> MachineView:
    return MachineView(
        name=name,
        node=node,
        created=created or "2026-03-01T10:00:00Z",
        marked=flags.get("marked", False),
        deleting=flags.get("deleting", False),
    )


FLEET = [
    machine("old", "n-old", "2026-03-01T08:00:00Z"),
    machine("new", "n-new", "2026-03-01T11:00:00Z"),
    machine("busy", "n-busy", "2026-03-01T11:30:00Z"),  # runs a do-not-disrupt pod
    machine("joining", "n-joining", "2026-03-01T09:00:00Z"),  # GPUs not advertised yet
    machine("no-node", "", "2026-03-01T07:00:00Z"),
]
USABLE = {"n-old", "n-new", "n-busy"}
PINNED = {"n-busy"}


def test_machines_not_yet_capacity_go_first_then_the_newest_usable() -> None:
    marks = choose_machines_to_delete(FLEET, USABLE, PINNED, 3)
    assert marks.mark == ("joining", "no-node", "new")
    assert marks.unmark == ()


def test_a_pinned_machine_is_never_chosen_even_when_too_few_are_left() -> None:
    marks = choose_machines_to_delete(FLEET, USABLE, PINNED, 5)
    assert "busy" not in marks.mark and len(marks.mark) == 4


def test_marks_already_made_count_and_stale_ones_are_taken_off() -> None:
    fleet = [
        machine("old", "n-old", marked=True),
        machine("busy", "n-busy", marked=True),  # pinned since it was marked
        machine("new", "n-new", "2026-03-01T11:00:00Z", marked=True),
        machine("joining", "n-joining"),
        machine("leaving", "n-leaving", deleting=True, marked=True),
    ]
    marks = choose_machines_to_delete(fleet, USABLE, PINNED, 1)
    assert marks.mark == ()  # "old" keeps its mark and is the one to go
    assert marks.unmark == ("busy", "new")  # the pinned mark, and one beyond the count
