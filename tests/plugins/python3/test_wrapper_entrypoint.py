"""Loading the entrypoint class, and reading what its instance serves."""

from __future__ import annotations

import textwrap

import pytest

from racetrack_plugins.python3.wrapper.entrypoint import (
    describe_class,
    describe_instance,
    load_entrypoint_class,
)
from racetrack_plugins.python3.wrapper.errors import EntrypointError

TWO_CLASSES = """
    from collections import OrderedDict  # imported classes are not candidates

    class Helper:
        pass

    class First:
        def perform(self) -> int:
            return 1

    class Second:
        def perform(self) -> int:
            return 2
"""


def test_the_only_class_with_perform_is_chosen(write_job):
    source = """
        class Helper:
            pass

        class Model:
            def perform(self) -> int:
                return 1
    """
    assert load_entrypoint_class("entrypoint.py", None, write_job(source)).__name__ == "Model"


def test_a_named_class_is_loaded(write_job):
    assert load_entrypoint_class("entrypoint.py", "Second", write_job(TWO_CLASSES)).__name__ == (
        "Second"
    )


def test_sibling_modules_of_the_entrypoint_can_be_imported(write_job):
    source = """
        from helpers import answer

        class Job:
            def perform(self) -> int:
                return answer()
    """
    job_dir = write_job(source, **{"helpers.py": "def answer():\n    return 42\n"})
    cls = load_entrypoint_class("entrypoint.py", None, job_dir)
    assert cls().perform() == 42


@pytest.mark.parametrize(
    ("source", "entrypoint_class", "message"),
    [
        (
            TWO_CLASSES,
            None,
            "'entrypoint.py' has several classes with a perform method "
            "(First, Second); choose one with jobtype_extra.entrypoint_class",
        ),
        ("class Helper:\n    pass\n", None, "'entrypoint.py' has no class with a perform method"),
        (
            TWO_CLASSES,
            "Third",
            "class 'Third' not found in 'entrypoint.py'; classes there: Helper, First, Second",
        ),
        (TWO_CLASSES, "Helper", "class 'Helper' in 'entrypoint.py' has no perform method"),
        ("raise ImportError('no numpy')\n", None, "importing"),
    ],
)
def test_a_wrong_entrypoint_is_a_clear_error(write_job, source, entrypoint_class, message):
    with pytest.raises(EntrypointError) as caught:
        load_entrypoint_class("entrypoint.py", entrypoint_class, write_job(source))
    assert str(caught.value).startswith(message)


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(EntrypointError, match=r"entrypoint file 'job\.py' not found in"):
        load_entrypoint_class("job.py", None, tmp_path)


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        ("self, *numbers", "perform takes *numbers, which a JSON object cannot fill"),
        ("self, x, /", "perform has the positional-only parameter 'x'"),
    ],
)
def test_a_perform_that_json_cannot_call_is_refused(write_job, signature, message):
    source = f"""
        class Job:
            def perform({signature}):
                return 1
    """
    cls = load_entrypoint_class("entrypoint.py", None, write_job(source))
    with pytest.raises(EntrypointError, match=message.replace("*", r"\*")):
        describe_class(cls)


def make_instance(job_dir, methods: str) -> object:
    source = "class Job:\n    def perform(self):\n        return 1\n" + textwrap.indent(
        textwrap.dedent(methods), "    "
    )
    (job_dir / "entrypoint.py").write_text(source)
    return load_entrypoint_class("entrypoint.py", None, job_dir)()


@pytest.mark.parametrize(
    ("methods", "message"),
    [
        (
            "def auxiliary_endpoints(self):\n    return {'/perform': self.perform}\n",
            "auxiliary_endpoints() names '/perform', which is taken by perform",
        ),
        (
            "def auxiliary_endpoints(self):\n    return {'name': self.perform}\n",
            "auxiliary_endpoints() names the path 'name'",
        ),
        (
            "def auxiliary_endpoints(self):\n    return {'/x': 3}\n",
            "auxiliary_endpoints()['/x'] is 3, not a method",
        ),
        (
            "def auxiliary_endpoints(self):\n    return [self.perform]\n",
            "auxiliary_endpoints() must return a dict with str keys",
        ),
        (
            "def static_endpoints(self):\n    return {'/parameters': 'entrypoint.py'}\n",
            "static_endpoints() names '/parameters', which the wrapper serves itself",
        ),
        (
            "def static_endpoints(self):\n    return {'/x': ('a', 'b', 'c')}\n",
            "static_endpoints()['/x'] must be 'file', ('file', 'mime/type') or 'dir'",
        ),
        (
            "def static_endpoints(self):\n    return {'/x': 'sub/../../x'}\n",
            "static_endpoints()['/x'] is 'sub/../../x', which leaves the job directory",
        ),
        (
            "def static_endpoints(self):\n    return {'/x': 'link'}\n",
            "static_endpoints()['/x'] is 'link', which leaves the job directory",
        ),
    ],
)
def test_unservable_endpoints_are_refused(tmp_path, methods, message):
    (tmp_path / "link").symlink_to("/etc")
    with pytest.raises(EntrypointError) as caught:
        describe_instance(make_instance(tmp_path, methods), tmp_path)
    assert str(caught.value).startswith(message)


def test_examples_for_unknown_endpoints_are_logged(tmp_path, caplog):
    methods = "def docs_input_examples(self):\n    return {'/nothing': {}}\n"
    interface = describe_instance(make_instance(tmp_path, methods), tmp_path)
    assert list(interface.calls) == ["/perform"]
    assert "docs_input_examples() names '/nothing', which is no endpoint" in caplog.text
