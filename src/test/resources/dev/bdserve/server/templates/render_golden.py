#!/usr/bin/python3
"""Renders every chat template here with every conversation in conversations/ the way Hugging Face's
apply_chat_template does (transformers' chat_template_utils: an ImmutableSandboxedEnvironment with trim_blocks,
lstrip_blocks and loopcontrols, the raise_exception and strftime_now globals, its own tojson filter) and writes
golden/<template>__<conversation>.txt, or .error with the exception's message when the template refuses (a
conversation with a "templates" list is rendered with those templates only: content given as a list of parts, which
templates written for string content cannot take); and renders
each small template of snippets.json with its variables into golden/snippets.json ({"output": ...}, or {"error": the
exception's class, "message": ...}).

Run by hand with Debian's python3-jinja2 (apt-get install python3-jinja2), from anywhere:
    /usr/bin/python3 src/test/resources/dev/bdserve/server/templates/render_golden.py
strftime_now reads a fixed clock (2024-07-26 12:00) so that the goldens stay fixed; the Java test uses the same.
"""
import json
import pathlib
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = pathlib.Path(__file__).resolve().parent
NOW = datetime(2024, 7, 26, 12, 0, 0)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(fmt):
    return NOW.strftime(fmt)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def main():
    env = environment()
    tokens = json.loads((HERE / "tokens.json").read_text(encoding="utf-8"))
    out = HERE / "golden"
    out.mkdir(exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    for name, special in sorted(tokens.items()):
        template = env.from_string((HERE / f"{name}.jinja").read_text(encoding="utf-8"))
        for conv in sorted((HERE / "conversations").glob("*.json")):
            c = json.loads(conv.read_text(encoding="utf-8"))
            if name not in c.get("templates", [name]):
                continue
            args = dict(messages=c["messages"], tools=c.get("tools"), documents=None,
                        add_generation_prompt=c.get("add_generation_prompt", False), **special, **c.get("kwargs", {}))
            stem = f"{name}__{conv.stem}"
            try:
                (out / f"{stem}.txt").write_bytes(template.render(**args).encode("utf-8"))
            except jinja2.exceptions.TemplateError as e:
                (out / f"{stem}.error").write_bytes(str(e).encode("utf-8"))
    results = []
    for case in json.loads((HERE / "snippets.json").read_text(encoding="utf-8")):
        try:
            results.append({"output": env.from_string(case["template"]).render(**case["vars"])})
        except jinja2.exceptions.TemplateSyntaxError as e:
            results.append({"error": "TemplateSyntaxError", "message": e.message})
        except Exception as e:
            results.append({"error": type(e).__name__, "message": str(e)})
    (out / "snippets.json").write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"jinja2 {jinja2.__version__}: {len(list(out.iterdir()))} goldens in {out}")


if __name__ == "__main__":
    main()
