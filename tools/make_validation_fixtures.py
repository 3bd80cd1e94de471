#!/usr/bin/env python3
"""Writes tests/fixtures/validation/<rule>.ron: one small workflow per validation rule.

Each fixture is the same small base workflow with one thing broken, so that each shows its
rule. tests/workflow_validation.rs asserts the rule, step and field each one reports.
Run from the repository root: python3 tools/make_validation_fixtures.py
"""
import json
import pathlib

OUT = pathlib.Path("tests/fixtures/validation")
HEADER = "#![enable(implicit_some)]\n"


def ron(v, ind=0):
    pad = "    " * ind
    if v is None:
        return "()"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    if isinstance(v, str):
        return v[1:] if v.startswith("@") else json.dumps(v)  # "@x" is an enum identifier
    if isinstance(v, list):
        if not v:
            return "[]"
        return "[\n" + "".join(pad + "    " + ron(x, ind + 1) + ",\n" for x in v) + pad + "]"
    if isinstance(v, dict) and v.get("__struct__"):
        items = [(k, x) for k, x in v.items() if k != "__struct__"]
        return "(\n" + "".join(f"{pad}    {k}: {ron(x, ind + 1)},\n" for k, x in items) + pad + ")"
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{\n" + "".join(f"{pad}    {json.dumps(k)}: {ron(x, ind + 1)},\n" for k, x in v.items()) + pad + "}"
    raise TypeError(v)


def S(**kw):
    d = {"__struct__": True}
    d.update(kw)
    return d


def step(id, type, op, inputs=(), nxt=None, **extra):
    s = S(id=id, type="@" + type, operation=op, inputs=[S(source="@" + src, key=k) for src, k in inputs])
    if nxt is not None:
        s["nextSteps"] = nxt
    s.update(extra)
    return s


def base():
    """analyse -> export"""
    return S(
        id="rule-fixture",
        name="Rule fixture",
        initialStep="analyse",
        parameters={"audioFile": None},
        metadata=S(createdAt="2026-01-01T00:00:00Z", updatedAt="2026-01-01T00:00:00Z"),
        steps={
            "analyse": step("analyse", "analysis", "features", [("parameter", "audioFile")], S(default="export")),
            "export": step("export", "transformation", "export", [("previous_step", "analyse.result")]),
        },
    )


def loop_base():
    """analyse -> check -true-> export, check -false-> fix -> check"""
    w = base()
    w["steps"] = {
        "analyse": step("analyse", "analysis", "features", [("parameter", "audioFile")], S(default="check")),
        "check": step(
            "check",
            "conditional",
            "",
            [("previous_step", "analyse.result")],
            S(conditional=[S(condition="true", stepId="export"), S(condition="false", stepId="fix")]),
            condition=S(operator="@greater_than", leftOperand="result.qualityScore", rightOperand=0.8),
            parameters={"lastFix": "context.fix.result"},
        ),
        "fix": step("fix", "transformation", "normalize", [("parameter", "audioFile")], S(default="check")),
        "export": step("export", "transformation", "export", [("previous_step", "analyse.result")]),
    }
    return w


def fixtures():
    f = {}
    w = base(); w["id"] = ""; f["missing-id"] = w
    w = base(); w["steps"] = {}; f["no-steps"] = w
    w = base(); w["initialStep"] = ""; f["missing-initial-step"] = w
    w = base(); w["initialStep"] = "analyze"; f["unknown-initial-step"] = w
    w = base(); w["steps"]["export"]["id"] = "exports"; f["step-id-mismatch"] = w
    w = base()
    w["steps"]["export.wav"] = w["steps"].pop("export")
    w["steps"]["export.wav"]["id"] = "export.wav"
    w["steps"]["analyse"]["nextSteps"]["default"] = "export.wav"
    f["invalid-step-id"] = w
    w = base(); w["steps"]["export"]["operation"] = ""; f["missing-operation"] = w
    w = base(); w["steps"]["analyse"]["timeoutSeconds"] = -1.0; f["invalid-timeout"] = w
    w = base(); w["steps"]["analyse"]["maxIterations"] = 0; f["invalid-max-iterations"] = w
    w = base(); w["steps"]["analyse"]["inputs"][0]["key"] = "audio_file"; f["undeclared-parameter"] = w
    w = base()
    w["steps"]["analyse"]["nextSteps"] = S(conditional=[S(condition="true", stepId="export")])
    f["branches-without-condition"] = w
    w = base()
    w["steps"]["analyse"]["condition"] = S(operator="@equals", leftOperand="result.channels", rightOperand=2)
    f["condition-without-branches"] = w
    w = loop_base()
    del w["steps"]["check"]["condition"]
    del w["steps"]["fix"]
    w["steps"]["check"]["parameters"] = {}
    w["steps"]["check"]["nextSteps"] = S(default="export")
    f["conditional-without-condition"] = w
    w = loop_base(); w["steps"]["check"]["nextSteps"]["conditional"][1]["condition"] = "no"; f["invalid-branch-condition"] = w
    w = loop_base(); w["steps"]["check"]["nextSteps"]["conditional"][1]["condition"] = "true"; f["duplicate-branch"] = w
    w = loop_base(); w["steps"]["check"]["condition"]["rightOperand"] = "high"; f["invalid-condition-operand"] = w
    w = base(); w["steps"]["export"]["inputs"][0]["key"] = "analyze.result"; f["unknown-step-reference"] = w
    w = base(); w["steps"]["export"]["inputs"][0]["key"] = "analyse.output"; f["invalid-step-reference"] = w
    w = base(); w["steps"]["analyse"]["parameters"] = {"previous": "context.export.result.audio"}; f["reference-before-run"] = w
    w = base(); w["steps"]["analyse"]["nextSteps"]["default"] = "exprot"; f["unknown-next-step"] = w
    w = base(); w["steps"]["export"]["nextSteps"] = S(default="analyse"); f["cycle-without-exit"] = w
    w = base(); w["steps"]["orphan"] = step("orphan", "analysis", "loudness", [("parameter", "audioFile")]); f["unreachable-step"] = w
    w = base()
    w["steps"]["analyse"]["nextSteps"]["default"] = "gain"
    w["steps"]["gain"] = step("gain", "transformation", "gain", [("parameter", "audioFile")], S(default="export"))
    f["unread-result"] = w
    f["loop-without-cap"] = loop_base()
    # `check` reads `render`, but the loop's `rerender` (same operation) replaces it unread.
    w = loop_base()
    w["steps"] = {
        "analyse": step("analyse", "analysis", "features", [("parameter", "audioFile")], S(default="render")),
        "render": step("render", "transformation", "normalize", [("parameter", "audioFile")], S(default="check")),
        "check": w["steps"]["check"],
        "rerender": step("rerender", "transformation", "normalize", [("parameter", "audioFile")], S(default="check"), maxIterations=3),
        "export": step("export", "transformation", "export", [("previous_step", "analyse.result")]),
    }
    w["steps"]["check"]["inputs"] = [S(source="@previous_step", key="render.result")]
    w["steps"]["check"]["parameters"] = {}
    w["steps"]["check"]["nextSteps"]["conditional"][1]["stepId"] = "rerender"
    f["stale-input"] = w
    f["valid"] = base()
    return f


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, w in fixtures().items():
        (OUT / f"{name}.ron").write_text(HEADER + ron(w) + "\n")


if __name__ == "__main__":
    main()
