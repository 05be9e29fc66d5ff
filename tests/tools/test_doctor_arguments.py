"""The doctor's functions refuse what they cannot use, naming it (was: AttributeError, TypeError or
KeyError from inside run_checks, exit_code and Item.line), and a check that yields something other
than Items is a failed check, not a list of characters that exit_code then crashed on."""
import pytest

from gpubp.errors import InvalidValueError
from gpubp.tools.doctor import FAILURE, OK, Item, exit_code, run_checks


@pytest.mark.parametrize("checks", ["check_versions", None, [1], 3])
def test_run_checks_refuses_what_is_not_a_list_of_checks(checks):
    with pytest.raises(InvalidValueError, match=r"^run_checks: checks must be a list of functions"):
        run_checks(False, checks=checks)


def test_a_check_that_yields_no_items_is_a_failure_and_those_before_are_kept():
    def check_odd(expect_gpu):
        yield Item("first", OK, "fine")
        yield "ok"

    items = run_checks(False, checks=[check_odd])
    assert [i.name for i in items] == ["first", "odd"] and items[1].status == FAILURE
    assert "it gave 'ok', not an Item" in items[1].detail and exit_code(items) == 1
    assert exit_code(iter([Item("a", OK, "")])) == 0


@pytest.mark.parametrize("items", [None, ["failure"], "failure"])
def test_exit_code_refuses_what_is_not_items(items):
    with pytest.raises(InvalidValueError, match=r"^exit_code takes the Items"):
        exit_code(items)


def test_an_item_of_no_known_status_is_refused_when_made():
    with pytest.raises(InvalidValueError, match=r"^Item status must be 'ok', 'warning' or 'failure', got 'bogus'"):
        Item("a", "bogus", "d")
