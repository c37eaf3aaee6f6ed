"""The pure router: match and match_regex to several outputs, filters in order."""

from __future__ import annotations

from relaybit.pipeline.router import Router
from relaybit.tag import compile_match


def test_routes_by_match_and_match_regex() -> None:
    router = Router(
        outputs=[
            ("all", compile_match("*")),
            ("app", compile_match("app.*")),
            ("rx", compile_match(None, r"^sys\.(kern|auth)$")),
            ("none", compile_match(None)),
        ],
        filters=[("f1", compile_match("app.web")), ("f2", compile_match("*"))],
    )
    assert router.route("app.web").outputs == ("all", "app")
    assert router.route("app.web").filters == ("f1", "f2")
    assert router.route("sys.kern").outputs == ("all", "rx")
    assert router.route("sys.kernel").outputs == ("all",)
    assert router.route("other").filters == ("f2",)


def test_route_is_cached_and_cache_resets_on_change() -> None:
    router = Router(outputs=[("a", compile_match("x"))])
    first = router.route("x")
    assert router.route("x") is first
    router.add_output("b", compile_match("*"))
    assert router.route("x").outputs == ("a", "b")
