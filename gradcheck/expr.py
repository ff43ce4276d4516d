"""Expression text -> a small expression tree, with Python's ``ast`` parser; never evaluated.

Allowed: numbers, names, + - * / ** @, unary - and +, parentheses, calls of ops with positional array
arguments and constant keyword arguments -- numbers, strings, lists and mappings of them (a leading string
constant sets the op's one required string keyword: einsum('ij,jk->ik', a, b)), ``x.T`` (the one attribute:
transpose), comparisons < <= > >= == != only as the condition of where(...), and subscripts with constant
integers, slices, ``None`` and ``...`` (getitem) or with index arrays -- names, expressions or lists of
integers or booleans (the index op: integer-array and boolean-mask indexing). Everything else is refused with
the offending text and its place.
"""
from __future__ import annotations

import ast
import math
import re
import warnings
from dataclasses import dataclass, field
from types import EllipsisType

import numpy as np

from .errors import Location, SpecError, clip, clipped_repr, did_you_mean
from .plaindata import PlainData
from .yamlsource import MAX_NUMBER_DIGITS

MAX_EXPRESSION_CHARS = 20_000
MAX_EXPRESSION_DEPTH = 200   # operators and calls nested inside one another
MAX_CONSTANT_DEPTH = 20      # lists and mappings nested inside a keyword's constant
YAML_CONSTANTS = {"true": True, "false": False, "null": None}
INFIX = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow", ast.MatMult: "matmul"}
COMPARISONS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
COMPARE_OP = "compare"            # the op a comparison lowers to; it may stand only as where's condition
CONDITION_OF = {"where": 0}       # op -> the position of its condition argument
INDEX_OP = "index"                # x[ids], x[mask]: subscripts holding index arrays
INDEX_ARRAY = "array"             # the index op's pattern entry where an index array goes
REFUSED = {
    ast.Attribute: "attribute access", ast.Compare: "a comparison", ast.Lambda: "a lambda",
    ast.BoolOp: "a boolean operator", ast.IfExp: "a conditional expression", ast.ListComp: "a comprehension",
    ast.GeneratorExp: "a comprehension", ast.DictComp: "a comprehension", ast.SetComp: "a comprehension",
    ast.Dict: "a dict", ast.Set: "a set", ast.List: "a list literal", ast.Tuple: "a tuple",
    ast.JoinedStr: "an f-string", ast.Await: "await", ast.Yield: "yield", ast.NamedExpr: "an assignment (:=)",
    ast.Starred: "unpacking (*)",
}


@dataclass(eq=False, repr=False)
class Name(PlainData):
    """A name in an expression: an input or an earlier node."""

    name: str
    location: Location
    text: str


@dataclass(eq=False, repr=False)
class Constant(PlainData):
    """A number (or array literal) in an expression."""

    value: float | np.ndarray  # an array: a literal index list, x[[0, 2, 2]]
    location: Location
    text: str


@dataclass(eq=False, repr=False)
class Call(PlainData):
    """An op applied to arguments (and keyword parameters) in an expression."""

    op: str
    args: list
    params: dict = field(default_factory=dict)
    location: Location | None = None
    text: str = ""


Expr = Name | Constant | Call


class ExpressionParser:
    """Parses one node's expression; ``known_ops`` decides which calls exist."""

    def __init__(self, node_name: str, text: str, location: Location, known_ops):
        self.node_name = node_name
        self.text = text
        self.location = location
        self.known_ops = known_ops

    def fail(self, message: str, ast_node=None) -> SpecError:
        return SpecError(f"node '{self.node_name}': {message}", self.where(ast_node))

    def where(self, ast_node) -> Location:
        if ast_node is None or not hasattr(ast_node, "col_offset") or self.location.line is None:
            return self.location
        line = ast_node.lineno - 1
        if line == 0 and self.location.column is not None:
            return Location(self.location.path, self.location.line, self.location.column + ast_node.col_offset)
        return Location(self.location.path, self.location.line + line, ast_node.col_offset + 1)

    def segment(self, ast_node) -> str:
        return ast.get_source_segment(self.source, ast_node) or ast.unparse(ast_node)

    def as_written(self, ast_node, parsed: str) -> str:
        """An identifier as the spec spells it: Python's parser NFKC-normalises identifiers (``ℌ`` becomes ``H``,
        ``ﬁ`` becomes ``fi``), so the name is read back from the source text at the node's offsets."""
        written = ast.get_source_segment(self.source, ast_node)
        if written is None:
            return parsed
        if isinstance(ast_node, ast.keyword):
            written = written.split("=", 1)[0].rstrip()
        return written if written.isidentifier() else parsed

    def show(self, ast_node) -> str:
        """The source text of ``ast_node``, quoted and cut short for a message."""
        return clipped_repr(self.segment(ast_node))

    def parse(self) -> Expr:
        self.source = self.text.strip()  # the text the parser sees: ast offsets refer to it
        if len(self.text) > MAX_EXPRESSION_CHARS:
            raise self.fail(f"the expression has {len(self.text):,} characters; the limit is {MAX_EXPRESSION_CHARS:,}")
        long_number = re.search(rf"\d{{{MAX_NUMBER_DIGITS + 1},}}", self.text)
        if long_number:  # on the first line its column is known
            on_first_line = "\n" not in self.text[: long_number.start()]
            raise SpecError(f"node '{self.node_name}': a number with {len(long_number.group()):,} digits is out of range "
                            f"(the limit is {MAX_NUMBER_DIGITS} digits)",
                            self.location.shifted(long_number.start()) if on_first_line else self.location)
        try:
            with warnings.catch_warnings():  # "invalid decimal literal" and friends: the SyntaxError says it
                warnings.simplefilter("ignore")
                tree = ast.parse(self.source, mode="eval")
        except SyntaxError as error:
            offset = (error.offset or 1) - 1
            location = self.location.shifted(offset) if (error.lineno or 1) == 1 else self.location
            if "too many nested parentheses" in (error.msg or ""):
                raise SpecError(f"node '{self.node_name}': the expression nests parentheses more than Python's parser "
                                "allows; split it into several nodes", location) from None
            raise SpecError(f"node '{self.node_name}': invalid expression {clipped_repr(self.text.strip())}: "
                            f"{clipped_repr(error.msg, 120)[1:-1]}", location) from None
        except (RecursionError, MemoryError):
            raise self.fail("the expression is nested too deeply for Python's parser; split it into several nodes") from None
        except ValueError as error:  # e.g. a NUL character on some Python versions
            raise self.fail(f"invalid expression {clipped_repr(self.text.strip())}: {clip(error, 120)}") from None
        leading = len(self.text) - len(self.text.lstrip())
        if leading and "\n" not in self.text:
            self.location = self.location.shifted(leading)
            self.text = self.text.strip()
        self.depth = 0
        try:
            return self.convert(tree.body)
        except RecursionError:
            raise self.fail("the expression is nested too deeply; split it into several nodes") from None

    def convert(self, node) -> Expr:
        self.depth += 1
        try:
            if self.depth > MAX_EXPRESSION_DEPTH:
                raise self.fail(f"the expression nests operators and calls more than {MAX_EXPRESSION_DEPTH} deep; "
                                "split it into several nodes", node)
            return self._convert(node)
        finally:
            self.depth -= 1

    def _convert(self, node) -> Expr:
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.fail(f"{self.show(node)} is not a number; only numbers, names and ops can appear", node)
            number = float(value) if isinstance(value, float) or abs(value) < 2 ** 1023 else float("inf")
            if not math.isfinite(number):
                raise self.fail(f"the number {self.show(node)} is out of the float64 range", node)
            return Constant(number, self.where(node), self.segment(node))
        if isinstance(node, ast.Name):
            name = self.as_written(node, node.id)
            return Name(name, self.where(node), name)
        if isinstance(node, ast.BinOp):
            op = INFIX.get(type(node.op))
            if op is None:
                raise self.fail(f"the operator in {self.show(node)} is not supported (use + - * / ** @)", node)
            return Call(op, [self.convert(node.left), self.convert(node.right)], {}, self.where(node), self.segment(node))
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.UAdd):
                return self.convert(node.operand)
            if isinstance(node.op, ast.USub):
                operand = self.convert(node.operand)
                if isinstance(operand, Constant):
                    return Constant(-operand.value, self.where(node), self.segment(node))
                return Call("neg", [operand], {}, self.where(node), self.segment(node))
            raise self.fail(f"the operator in {self.show(node)} is not supported", node)
        if isinstance(node, ast.Call):
            return self.convert_call(node)
        if isinstance(node, ast.Subscript):
            return self.convert_subscript(node)
        if isinstance(node, ast.Attribute):
            if node.attr == "T":
                return Call("transpose", [self.convert(node.value)], {}, self.where(node), self.segment(node))
            raise self.fail(f"attribute access is not allowed in an expression: {self.show(node)} (the one attribute "
                            "is .T, the transpose)", node)
        if isinstance(node, ast.Compare):
            raise self.fail(f"a comparison is allowed only as the condition of where(...): {self.show(node)} "
                            "(e.g. where(x > 0, x, 0.1 * x))", node)
        what = REFUSED.get(type(node), type(node).__name__)
        raise self.fail(f"{what} is not allowed in an expression: {self.show(node)}", node)

    def convert_call(self, node: ast.Call, condition: bool = False) -> Call:
        if not isinstance(node.func, ast.Name):
            what = "attribute access" if isinstance(node.func, ast.Attribute) else "calling an expression"
            raise self.fail(f"{what} is not allowed: {self.show(node.func)}; call an op by its name", node.func)
        op_name = self.as_written(node.func, node.func.id)
        info = self.known_ops.get(op_name)
        if info is None:
            raise self.fail(f"unknown op '{clip(op_name)}'{did_you_mean(op_name, self.known_ops)}; "
                            "`gradcheck ops` lists them", node.func)
        if op_name == COMPARE_OP and not condition:
            raise self.fail(f"{op_name}() is allowed only as the condition of where(...): {self.show(node)}", node.func)
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.fail(f"unpacking (*) is not allowed in {self.show(node)}", arg)
        positional = list(node.args)
        params = {}
        leading = self.leading_string_keyword(info)
        first = positional[0] if positional else None
        if leading and isinstance(first, ast.Constant) and isinstance(first.value, str):
            params[leading] = first.value
            positional.pop(0)
        args = [self.convert_condition(arg) if CONDITION_OF.get(op_name) == position else self.convert(arg)
                for position, arg in enumerate(positional)]
        problem = info.check_arity(len(args))
        if problem:
            raise self.fail(f"{problem}: {self.show(node)}", node)
        for kw in node.keywords:
            if kw.arg is None:
                raise self.fail(f"**keyword unpacking is not allowed in {self.show(node)}", kw.value)
            key = self.as_written(kw, kw.arg)
            if key in params:
                raise self.fail(f"keyword '{clip(key)}' is given twice in {self.show(node)}", kw)
            params[key] = self.constant_keyword(kw.value, op_name, key)
        return Call(op_name, args, params, self.where(node), self.segment(node))

    @staticmethod
    def leading_string_keyword(info) -> str | None:
        """The keyword a leading string argument sets: the op's one required string keyword (einsum's subscripts)."""
        params = getattr(info, "params", None) or {}
        keys = [key for key, p in params.items() if p.kind == "str" and p.required]
        return keys[0] if len(keys) == 1 else None

    def convert_condition(self, node) -> Expr:
        """where's condition: a comparison of two expressions (no gradient flows through it), or any expression."""
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == COMPARE_OP:
            return self.convert_call(node, condition=True)
        if not isinstance(node, ast.Compare):
            return self.convert(node)
        if len(node.ops) != 1:
            raise self.fail(f"a chained comparison is not supported: {self.show(node)}; nest where(...) instead", node)
        relation = COMPARISONS.get(type(node.ops[0]))
        if relation is None:
            raise self.fail(f"the comparison in {self.show(node)} is not supported (use < <= > >= == !=)", node)
        left, right = self.convert(node.left), self.convert(node.comparators[0])
        return Call(COMPARE_OP, [left, right], {"relation": relation}, self.where(node), self.segment(node))

    def convert_subscript(self, node: ast.Subscript) -> Call:
        """x[...]: constant integers and slices (getitem), or index arrays among them (the index op)."""
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if all(self.is_constant_index_item(item) for item in items):
            index = self.constant_index(node.slice)
            return Call("getitem", [self.convert(node.value)], {"index": index}, self.where(node), self.segment(node))
        pattern: list = []
        arrays = []
        for item in items:
            if self.is_constant_index_item(item):
                pattern.extend(self.constant_index(item))
            else:
                pattern.append(INDEX_ARRAY)
                arrays.append(self.index_list(item) if isinstance(item, ast.List) else self.convert(item))
        if sum(1 for i in pattern if i is Ellipsis) > 1:
            raise self.fail(f"an index can have only one '...': {self.show(node)}", node)
        return Call(INDEX_OP, [self.convert(node.value), *arrays], {"pattern": tuple(pattern)}, self.where(node),
                    self.segment(node))

    @staticmethod
    def is_constant_index_item(item) -> bool:
        if isinstance(item, ast.Slice):
            return True
        if isinstance(item, ast.Constant):
            value = item.value
            return value is None or value is Ellipsis or (isinstance(value, int) and not isinstance(value, bool))
        return isinstance(item, ast.UnaryOp) and isinstance(item.op, ast.USub) and isinstance(item.operand, ast.Constant) \
            and isinstance(item.operand.value, int) and not isinstance(item.operand.value, bool)

    def index_list(self, node: ast.List) -> Constant:
        """A literal index array: a (nested) list of integers, or of booleans (a mask)."""
        def value(item):
            if isinstance(item, ast.List):
                return [value(i) for i in item.elts]
            if isinstance(item, ast.Name) and item.id in ("true", "false", "True", "False"):
                return item.id in ("true", "True")
            if isinstance(item, ast.Constant) and isinstance(item.value, bool):
                return item.value
            if self.is_constant_index_item(item) and not isinstance(item, ast.Slice):
                return self.constant_int(item)
            raise self.fail(f"an index list holds integers or booleans only, got {self.show(item)}", item)

        values = value(node)
        try:
            array = np.array(values)
        except ValueError:
            raise self.fail(f"the index list {self.show(node)} is ragged", node) from None
        kinds = {type(item) for item in np.ravel(np.array(values, dtype=object))} if array.size else set()
        if len(kinds) > 1:
            raise self.fail(f"an index list holds integers or booleans, not both: {self.show(node)}", node)
        return Constant(array.astype(np.int64) if array.dtype.kind != "b" else array, self.where(node), self.segment(node))

    def constant_keyword(self, node, op_name: str, key: str, depth: int = 0):
        """A keyword argument's value: a number, string, bool or None; a tuple/list of numbers (a tuple); or a
        list or mapping of constants (``conv_param={stride: 2, pad: 1}``: a bare key is its name, as in YAML)."""
        if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, (int, float, str, bool))):
            return node.value
        written = self.as_written(node, node.id) if isinstance(node, ast.Name) else None
        if written in YAML_CONSTANTS:  # causal=true, as one writes it in YAML
            return YAML_CONSTANTS[written]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) \
                and isinstance(node.operand.value, (int, float)) and not isinstance(node.operand.value, bool):
            return -node.operand.value
        if depth < MAX_CONSTANT_DEPTH and isinstance(node, (ast.Tuple, ast.List)):
            items = tuple(self.constant_keyword(item, op_name, key, depth + 1) for item in node.elts)
            if isinstance(node, ast.Tuple) or all(isinstance(i, (int, float)) and not isinstance(i, bool) for i in items):
                return items
            return list(items)
        if depth < MAX_CONSTANT_DEPTH and isinstance(node, ast.Dict):
            mapping = {}
            for key_node, value_node in zip(node.keys, node.values, strict=True):
                if key_node is None:
                    raise self.fail(f"**unpacking is not allowed in keyword '{clip(key)}' of {op_name}()", value_node)
                if isinstance(key_node, ast.Name):
                    name = key_node.id
                elif isinstance(key_node, ast.Constant) and isinstance(key_node.value, str):
                    name = key_node.value
                else:
                    raise self.fail(f"keyword '{clip(key)}' of {op_name}(): a mapping's keys must be names or strings, "
                                    f"got {self.show(key_node)}", key_node)
                if name in mapping:
                    raise self.fail(f"keyword '{clip(key)}' of {op_name}(): key '{clip(name)}' is given twice", key_node)
                mapping[name] = self.constant_keyword(value_node, op_name, key, depth + 1)
            return mapping
        raise self.fail(f"keyword '{clip(key)}' of {op_name}() must be a constant (number, string, true/false, None, "
                        f"a list or tuple, or a mapping {{name: constant}}), got {self.show(node)}", node)

    def constant_index(self, node):
        """A subscript as a tuple of ints, slices, None and Ellipsis."""
        items = node.elts if isinstance(node, ast.Tuple) else [node]
        index: list[int | slice | None | EllipsisType] = []
        for item in items:
            if isinstance(item, ast.Slice):
                index.append(slice(*(self.constant_int(part, allow_none=True) for part in (item.lower, item.upper, item.step))))
            elif isinstance(item, ast.Constant) and item.value is Ellipsis:
                index.append(Ellipsis)
            elif isinstance(item, ast.Constant) and item.value is None:
                index.append(None)
            else:
                index.append(self.constant_int(item))
        if sum(1 for i in index if i is Ellipsis) > 1:
            raise self.fail(f"an index can have only one '...': {self.show(node)}", node)
        return tuple(index)

    def constant_int(self, node, allow_none=False):
        if node is None and allow_none:
            return None
        if isinstance(node, ast.Constant) and node.value is None and allow_none:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) \
                and isinstance(node.operand.value, int) and not isinstance(node.operand.value, bool):
            return -node.operand.value
        raise self.fail(f"an index must be a constant integer or slice, got {self.show(node)}", node)
