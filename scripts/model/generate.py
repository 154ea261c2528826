"""Seeded generator of Python snippets rich in nested calls (the synthetic 70 % of training text).

Covers: nesting depth 1-6 (mostly 2-4), several arguments, keyword arguments, method and module
calls, calls already closed before the nested one (partly-closed runs such as `f(g(x), h(y`),
calls inside function bodies / if / for / return / assignments, comments with numbers.
The evaluation templates in evaluate.py use other identifiers and layouts on purpose.
Any snippet matching common.FORBIDDEN (the authors' `print(str(` template) is rejected.
"""
import random

from common import contains_forbidden

BUILTINS = ["len", "str", "int", "float", "list", "dict", "set", "tuple", "sorted", "reversed", "sum",
            "max", "min", "abs", "repr", "print", "range", "enumerate", "zip", "map", "filter", "any",
            "all", "round", "type", "isinstance", "hash", "iter", "next", "bool", "format", "ord", "chr",
            "hex", "bin", "id", "divmod", "pow", "getattr", "hasattr", "callable", "bytes", "frozenset"]
FUNCS = ["f", "g", "h", "foo", "bar", "baz", "func", "helper", "compute", "process", "transform",
         "parse", "load", "dump", "convert", "normalize", "validate", "build", "make", "get_value",
         "update", "apply", "merge", "split_items", "encode_all", "wrap", "unwrap", "fetch", "render",
         "check", "scale", "clip", "flatten", "combine", "to_text", "from_text", "read_data", "emit",
         "collect", "resolve", "lookup_key", "fmt", "add", "mul", "sub", "neg", "inc", "step"]
OBJECTS = ["self", "obj", "ctx", "config", "node", "item", "data", "result", "parser", "cache",
           "db", "request", "response", "self.manager", "self.items", "other", "parent", "tree",
           "buf", "stream", "value", "entry", "record", "state", "args", "options", "table"]
MODULES = ["os.path", "math", "json", "re", "sys", "np", "os", "time", "random", "itertools",
           "functools", "collections", "string", "struct", "copy", "textwrap", "shutil", "logging"]
METHODS = ["get", "append", "join", "split", "strip", "format", "replace", "items", "keys", "values",
           "lower", "upper", "read", "write", "add", "pop", "find", "startswith", "endswith",
           "encode", "decode", "copy", "update", "count", "index", "extend", "insert", "remove",
           "setdefault", "partition", "rstrip", "lstrip", "sort", "search", "match", "sub", "dumps",
           "loads", "exists", "dirname", "basename", "floor", "sqrt", "isfile", "debug", "info"]
NAMES = ["x", "y", "z", "i", "j", "k", "n", "m", "a", "b", "c", "s", "t", "key", "val", "name",
         "path", "text", "line", "word", "items", "values", "total", "count", "size", "index",
         "offset", "width", "height", "data", "result", "msg", "token", "prefix", "suffix", "default",
         "left", "right", "start", "end", "lo", "hi", "acc", "row", "col", "buf", "chunk", "mode"]
TARGETS = ["x", "y", "z", "out", "res", "result", "value", "total", "name", "text", "parts", "n",
           "self.value", "self.data", "self._cache", "items", "line", "out[i]", "d[key]", "tmp"]
KWARGS = ["key", "default", "sep", "end", "start", "reverse", "encoding", "mode", "flags", "base",
          "indent", "maxsplit", "strict", "timeout", "limit", "errors", "level"]
STRINGS = ["''", '""', "'a'", "'b'", "'x'", "','", "' '", "'\\n'", "'utf-8'", "'r'", "'w'", "'%s'",
           "'{}'", "'name'", "'key'", "\"value\"", "'data.txt'", "'.'", "'/'", "'-'", "'_'", "'0'"]
COMMENTS = ["# compute the {w}", "# read the {w}", "# convert the value", "# check {n} items",
            "# retry {n} times", "# limit is {n}", "# step {n}", "# handle the {w} case",
            "# build the {w} list", "# update the cache", "# TODO: clean up", "# default {n}",
            "# parse the {w}", "# call the helper", "# store the result", "# nested calls",
            "# format the {w}", "# value {n}", "# {w} {n}", "# write {n} bytes", "# keep the {w}"]
WORDS = ["string", "number", "name", "key", "path", "line", "token", "result", "value", "header",
         "record", "item", "text", "list", "table", "buffer", "node", "config", "output", "input"]


class Gen:
    """v1 (parenlens-code-6l): fixed identifier lists, 3-digit numbers 45 % of the time."""

    def __init__(self, seed: int):
        self.r = random.Random(seed)

    # Where the two styles differ. v1: each hook is the one draw it always was (the stream of
    # parenlens-code-6l's corpus is unchanged); VariedGen (v2) overrides them.
    TRAILING = [0.985, 0.015]  # P(0 / 1 arguments after a nested call)

    def name(self) -> str:
        return self.r.choice(NAMES)

    def obj(self) -> str:
        return self.r.choice(OBJECTS)

    def func(self) -> str:
        return self.r.choice(FUNCS)

    def method(self) -> str:
        return self.r.choice(METHODS)

    def string(self) -> str:
        return self.r.choice(STRINGS)

    def target(self) -> str:
        return self.r.choice(TARGETS)

    def comment(self) -> str:
        return self.r.choice(COMMENTS).format(n=self.number(), w=self.r.choice(WORDS))

    def number(self) -> str:
        r = self.r.random()
        if r < 0.45:
            return str(self.r.randint(100, 999))  # 3-digit numbers, as in the authors' prompts
        if r < 0.75:
            return str(self.r.randint(0, 20))
        if r < 0.9:
            return str(self.r.randint(1000, 99999))
        return f"{self.r.randint(0, 99)}.{self.r.randint(0, 99)}"

    def atom(self) -> str:
        r = self.r.random()
        if r < 0.35:
            return self.name()
        if r < 0.6:
            return self.number()
        if r < 0.72:
            return self.string()
        if r < 0.82:
            return f"{self.obj()}.{self.name()}"
        if r < 0.9:
            return f"{self.name()}[{self.r.choice([self.number(), self.name()])}]"
        if r < 0.95:
            return f"{self.name()} {self.r.choice(['+', '-', '*', '//', '%'])} {self.number()}"
        return f"[{self.atom()}, {self.atom()}]"

    def callee(self) -> str:
        r = self.r.random()
        if r < 0.35:
            return self.r.choice(BUILTINS)
        if r < 0.6:
            return self.func()
        if r < 0.85:
            return f"{self.obj()}.{self.method()}"
        return f"{self.r.choice(MODULES)}.{self.r.choice(METHODS + FUNCS[:10])}"

    def small_call(self) -> str:
        """A call closed in place (depth 1-2): its `)` are already written before the spine closes."""
        if self.r.random() < 0.7:
            return f"{self.callee()}({self.atom()})"
        return f"{self.callee()}({self.callee()}({self.atom()}))"

    def arg(self) -> str:
        r = self.r.random()
        if r < 0.82:
            a = self.atom()
        elif r < 0.9:
            a = self.small_call()  # closed in place: partly-closed runs such as `f(g(x), h(y`
        else:
            a = f"{self.atom()}, {self.atom()}"
        return a

    def call(self, depth: int) -> str:
        """A call whose argument list holds the nested spine call of depth-1 among other arguments."""
        callee = self.callee()
        if depth == 1:
            n_args = self.r.choices([0, 1, 2, 3], [0.1, 0.55, 0.25, 0.1])[0]
            args = [self.arg() for _ in range(n_args)]
        else:
            inner = self.call(depth - 1)
            before = [self.arg() for _ in range(self.r.choices([0, 1, 2], [0.55, 0.35, 0.1])[0])]
            if self.r.random() < 0.08:
                before.append(f"{self.r.choice(KWARGS)}={self.atom()}")
            # Arguments after the nested call are rare: a finished spine then closes all its calls in
            # one run, so predicting that run needs counting (with frequent trailing arguments the
            # best guess is a single `)`, and a model learns exactly that prior).
            after = [self.arg() for _ in range(self.r.choices([0, 1], self.TRAILING)[0])]
            args = before + [inner] + after
        if depth == 1 and args and self.r.random() < 0.1:
            args.append(f"{self.r.choice(KWARGS)}={self.atom()}")
        return f"{callee}({', '.join(args)})"

    def depth(self) -> int:
        return self.r.choices([1, 2, 3, 4, 5, 6], [0.14, 0.22, 0.25, 0.22, 0.11, 0.06])[0]

    def expr(self) -> str:
        e = self.call(self.depth())
        r = self.r.random()
        if r < 0.08:
            e = f"{e} + {self.call(self.r.randint(1, 3))}"
        elif r < 0.12:
            e = f"not {e}"
        elif r < 0.16:
            e = f"{self.call(self.r.randint(1, 3))}[{self.r.randint(0, 3)}]"
        return e

    def simple_statement(self) -> str:
        r = self.r.random()
        e = self.expr()
        if r < 0.4:
            return f"{self.target()} = {e}"
        if r < 0.6:
            return e
        if r < 0.72:
            return f"{self.target()} += {e}"
        if r < 0.8:
            return f"assert {e}"
        if r < 0.88:
            return f"{self.target()}, {self.name()} = {e}, {self.atom()}"
        return f"yield {e}"

    def block(self, indent: str, n: int, in_function: bool) -> list[str]:
        lines = []
        for _ in range(n):
            r = self.r.random()
            if r < 0.08:
                lines.append(indent + self.comment())
            elif r < 0.18 and len(indent) < 12:
                head = self.r.choice([f"if {self.expr()}:", f"for {self.name()} in {self.expr()}:",
                                      f"while {self.expr()}:", f"with {self.expr()} as {self.name()}:",
                                      f"elif_placeholder"])
                if head == "elif_placeholder":
                    head = f"if {self.name()} == {self.atom()}:"
                lines.append(indent + head)
                lines += self.block(indent + "    ", self.r.randint(1, 3), in_function)
            elif r < 0.28 and in_function:
                lines.append(indent + f"return {self.expr()}")
            else:
                lines.append(indent + self.simple_statement())
        return lines

    def doc(self) -> str:
        r = self.r.random()
        if r < 0.35:  # module-level statements
            lines = self.block("", self.r.randint(2, 8), False)
        elif r < 0.8:  # a function
            params = ", ".join(self.r.sample(NAMES, self.r.randint(0, 3)))
            lines = [f"def {self.func()}({params}):"] + self.block("    ", self.r.randint(2, 7), True)
        else:  # a method in a class
            params = ", ".join(["self"] + self.r.sample(NAMES, self.r.randint(0, 2)))
            lines = [f"class {self.r.choice(['Node', 'Parser', 'Cache', 'Handler', 'Store', 'Tree'])}:",
                     f"    def {self.func()}({params}):"] + self.block("        ", self.r.randint(2, 6), True)
        return "\n".join(lines) + "\n"

    def docs(self, n: int) -> list[str]:
        out = []
        while len(out) < n:
            d = self.doc()
            if not contains_forbidden(d):  # the authors' template never enters training
                out.append(d)
        return out


SYLLABLES = ["ka", "lo", "mi", "ren", "tor", "vin", "sel", "dra", "po", "qui", "zen", "mar", "tul", "bex",
             "fi", "gor", "ny", "sha", "wel", "cor", "ab", "ul", "est", "im", "on", "ar", "ex", "id"]


class VariedGen(Gen):
    """v2 (parenlens-code-12l): numbers of every length 1-7 (equally often), identifiers and strings
    that vary (half synthesized from syllables), method chains with closed calls, a comment's number
    often reused by the next number drawn (copying pays), trailing arguments after a nested call
    5 % of the time."""

    TRAILING = [0.95, 0.05]

    def __init__(self, seed: int):
        super().__init__(seed)
        self.pending: str | None = None  # a number from a comment, reused once

    def word(self) -> str:
        return "".join(self.r.choice(SYLLABLES) for _ in range(self.r.choices([1, 2, 3], [0.3, 0.55, 0.15])[0]))

    def ident(self) -> str:
        parts = [self.word() for _ in range(self.r.choices([1, 2, 3], [0.65, 0.3, 0.05])[0])]
        return "_".join(parts) + (str(self.r.randint(0, 9)) if self.r.random() < 0.1 else "")

    def number(self) -> str:
        if self.pending is not None:
            out, self.pending = self.pending, None
            return out
        r = self.r.random()
        if r < 0.15:
            return str(self.r.randint(0, 20))
        if r < 0.25:
            return f"{self.r.randint(0, 999)}.{self.r.randint(0, 99)}"
        digits = self.r.randint(1, 7)
        return str(self.r.randint(0, 9) if digits == 1 else self.r.randint(10 ** (digits - 1), 10 ** digits - 1))

    def name(self) -> str:
        return self.r.choice(NAMES) if self.r.random() < 0.5 else self.ident()

    def obj(self) -> str:
        r = self.r.random()
        return self.r.choice(OBJECTS) if r < 0.5 else (f"self.{self.ident()}" if r < 0.7 else self.ident())

    def func(self) -> str:
        return self.r.choice(FUNCS) if self.r.random() < 0.5 else self.ident()

    def method(self) -> str:
        return self.r.choice(METHODS) if self.r.random() < 0.5 else self.ident()

    def string(self) -> str:
        r = self.r.random()
        if r < 0.4:
            return self.r.choice(STRINGS)
        q = self.r.choice(["'", '"'])
        body = " ".join(self.word() for _ in range(self.r.randint(1, 3)))
        if r < 0.55:
            body += f" {self.number()}"
        elif r < 0.65:
            body = f"{body} {{}}"
        return q + body + q

    def target(self) -> str:
        return self.r.choice(TARGETS) if self.r.random() < 0.5 else self.ident()

    def callee(self) -> str:
        if self.r.random() < 0.12:  # a method chain: closed calls before the open one
            return f"{self.obj()}.{self.method()}({self.atom()}).{self.method()}"
        return super().callee()

    def comment(self) -> str:
        n = self.number()
        if self.r.random() < 0.5:
            self.pending = n
        return self.r.choice(COMMENTS).format(n=n, w=self.r.choice(WORDS + [self.word()]))


GENERATORS = {"v1": Gen, "v2": VariedGen}


if __name__ == "__main__":
    for d in VariedGen(0).docs(4):
        print(d)
