"""One code path for every backend (issue 16, DESIGN "The core contract"): a CPU guard.

The reference code takes its array module from its inputs (``reference.backend.namespace``) and runs
unchanged on CuPy. This test reads every module of ``reference/`` (except ``backend.py``, the one place
allowed to tell the backends apart) as an AST and finds every attribute use rooted at NumPy or at the
array namespace — ``np.X``, ``numpy.X``, ``xp.X``, submodules and ufunc methods included
(``xp.linalg.norm``, ``np.random.default_rng``, ``np.maximum.reduceat``), and ``from numpy import X`` —
and checks, for device-path code:

* that ``X`` exists in CuPy's namespace (for a ufunc method: that CuPy implements it for that ufunc);
* that each call fits CuPy's signature: its positional count and keyword names bind to CuPy's
  parameters (for a ufunc: at most ``nin + nout`` positionals, keywords among those CuPy accepts);
* that it imports no NumPy-only library (``scipy``, ``autograd``): those go through ``backend.py``;
* that a function which takes its namespace from its inputs (it names ``xp``) builds no host array with
  ``np.`` (CuPy refuses a NumPy array among its own: the bug issue 8 fixed in the locality bias). Allowed
  there: dtypes, constants, shape helpers, the host RNG (:data:`HOST_HELPERS`) and explicit copies
  ``xp.asarray(np.…)``.

Type annotations are not checked (they never run). The reference listing is CuPy's own namespace,
shipped as data (``tests/data/cupy_namespace.json``, written by ``tests/data/make_cupy_namespace.py``)
so the check runs in CI without CuPy; where CuPy is installed, the same check also runs against the
live namespace.

Host-only code, which by design runs on NumPy arrays on the host (statistics, reports, files, data
generation), is listed in :data:`HOST_ONLY` with one reason per entry. Everything else, including
any new file, must pass. Entries marked ``TODO(issue 16)`` are device-path code with findings in
files this issue may not edit; they are listed in the issue's report and must be fixed, not kept:
an entry that no longer has findings fails the test, so it is removed when its file is fixed.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.util
import inspect
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "reference"
LISTING = Path(__file__).with_name("data") / "cupy_namespace.json"
GENERATOR = Path(__file__).with_name("data") / "make_cupy_namespace.py"

EXEMPT = {"reference/backend.py": "the one module that tells the backends apart (DESIGN: one code path)"}

# Host-only code: runs on NumPy arrays on the host by design. Keys are a file, or ``file::name`` for one
# top-level function or class of a file whose other parts are device-path. One reason each.
HOST_ONLY: dict[str, str] = {
    # --- the command line, files, checkpoints, imports, reports
    "reference/cli.py": "the command line: arguments, printing, files; hands arrays to the core",
    "reference/io.py": "bounded reading of files and JSON on the host",
    "reference/checkpoint.py": "safetensors files: host bytes in and out",
    "reference/hf.py": "Hugging Face checkpoint import: host files and host arrays",
    "reference/pretrained.py": "pretrained-model import: host files and host arrays",
    "reference/compare.py": "clearform compare: reads golden files and compares on the host",
    "reference/crosscheck.py": "the PyTorch / Hugging Face cross-check: host arrays against torch tensors",
    "reference/golden.py": "golden files: NumPy tensors and the autograd oracle on the host, by design",
    "reference/report.py": "HTML and PNG reports of host statistics",
    "reference/tokenizer.py": "bytes and strings to ids on the host",
    "reference/data/batch.py": "batches are built on the host (moved to a device by the caller)",
    "reference/data/toyworld/*.py": "toy-world data generation: seeded host RNG and host arrays",
    "reference/data/__init__.py": "data package: re-exports",
    # --- statistics of evaluated runs (host float64 by design: they read to_host(...) activations)
    "reference/metrics/information.py": "information measures of host activations (NEU, MSA statistics)",
    "reference/metrics/estimators.py": "MI / KL estimators of host activations (MSA statistics)",
    "reference/metrics/agreement.py": "agreement statistics and tests over host samples (NEU, VDS, MSA)",
    "reference/model.py::generate": "sampling: the last logits row is moved to the host (to_host) and sampled there with the "
                                    "host RNG, so a seed gives the same tokens on every backend (DESIGN: randomness on the host)",
    # --- every mechanism's experiment, CLI and golden cases (CONTRIBUTING's template: host orchestration by design)
    "reference/mechanisms/*/experiment.py": "a mechanism's experiment: trains, evaluates, writes reports on the host",
    "reference/mechanisms/*/cli.py": "a mechanism's command line",
    "reference/mechanisms/*/golden.py": "a mechanism's golden cases: host NumPy tensors by design (like reference/golden.py)",
    # --- LOC: statistics of evaluated attention (host float64, spec §5)
    "reference/mechanisms/locality/bounds.py": "per-row bound checks of evaluated attention, host float64 (module docstring)",
    "reference/mechanisms/locality/evaluate.py": "§5 metrics of evaluated batches on the host (reads to_host activations)",
    "reference/mechanisms/locality/layout.py": "layouts are host NumPy arrays built from host token ids (module docstring)",
    "reference/mechanisms/locality/rules.py": "A8 rule verification and injection: host tables, host generation loop",
    "reference/mechanisms/locality/variational.py": "A6 theory mode, forward only, evaluated on the host",
    # --- NEU, VDS, MSA: statistics of recorded activations
    "reference/mechanisms/neurons/figures.py": "figures of host statistics",
    "reference/mechanisms/neurons/statistics.py": "statistics of host activations",
    "reference/mechanisms/neurons/categories.py": "category clustering of host activations (SciPy hierarchy)",
    "reference/mechanisms/neurons/zones.py": "activation-zone segmentation of host activations",
    "reference/mechanisms/vds/measures.py": "clustering measures of host activations",
    "reference/mechanisms/vds/evaluate.py": "evaluation statistics on the host",
    "reference/mechanisms/msma/stats.py": "statistics of host activations",
    "reference/mechanisms/msma/panel.py": "report panels on the host",
    "reference/mechanisms/msma/text.py": "text metrics of generated host token ids",
    "reference/mechanisms/msma/interventions.py": "A8/A9 interventions on a frozen model and generation, sampled on the host",
}

LIBRARIES_NUMPY_ONLY = ("scipy", "autograd", "sklearn", "numba", "torch")
NAMESPACE_NAMES = {"xp"}  # the conventional name of ``backend.namespace(...)``'s result, wherever it comes from
# NumPy attributes a device function may call: dtypes and scalar types, constants, shape and dtype helpers, the host RNG
# (backend.rng: randomness is drawn on the host by design). Anything else builds a host array.
HOST_HELPERS = {
    "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool_",
    "dtype", "issubdtype", "integer", "floating", "number", "generic", "finfo", "iinfo", "result_type",
    "shape", "ndim", "prod", "random",
}
MOVES_TO_DEVICE = {"asarray", "array"}


# --------------------------------------------------------------------------- scanning


@dataclass(frozen=True)
class Use:
    """One attribute use rooted at NumPy or the array namespace, e.g. ``np.maximum.reduceat(x, s, axis=-1)``."""

    path: str
    line: int
    owner: str  # the top-level function or class it sits in ("" at module level)
    root: str  # the name as written: "np", "xp", "la" ...
    chain: tuple[str, ...]  # ("maximum", "reduceat"), relative to NumPy / CuPy
    call: tuple[int, tuple[str, ...], bool, bool] | None  # (positionals, keyword names, *args, **kwargs) if called

    def text(self) -> str:
        return ".".join((self.root if self.root in ("np", "numpy", "xp") else "np", *self.chain))


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    owner: str
    what: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" + (f" ({self.owner})" if self.owner else "")
        return f"{where}: {self.what}"


_ANNOTATION_FIELDS = {"annotation", "returns"}


def _children(node: ast.AST):
    """Child nodes, skipping annotations (they never run; ``np.ndarray`` there is documentation)."""
    for name, value in ast.iter_fields(node):
        if name in _ANNOTATION_FIELDS:
            continue
        if isinstance(value, ast.AST):
            yield value
        elif isinstance(value, list):
            yield from (v for v in value if isinstance(v, ast.AST))


def _chain(node: ast.Attribute) -> tuple[str | None, list[str]]:
    parts = []
    cur: ast.AST = node
    while isinstance(cur, ast.Attribute):
        parts.append(cur.attr)
        cur = cur.value
    return (cur.id if isinstance(cur, ast.Name) else None), parts[::-1]


def scan_source(source: str, path: str) -> tuple[list[Use], list[Finding]]:
    """Every NumPy / namespace attribute use in ``source``, and its imports of NumPy-only libraries."""
    tree = ast.parse(source)
    roots: dict[str, list[str]] = {name: [] for name in NAMESPACE_NAMES}  # name -> chain prefix it stands for
    numpy_names: set[str] = set()  # names bound by ``import numpy [as np]`` (host NumPy, not the namespace)
    uses: list[Use] = []
    findings: list[Finding] = []

    for node in ast.walk(tree):  # pass 1: the names that stand for NumPy or the namespace
        if isinstance(node, ast.Import):
            for alias in node.names:
                top, *rest = alias.name.split(".")
                if top == "numpy":
                    roots[alias.asname or top] = rest if alias.asname else []
                    numpy_names.add(alias.asname or top)
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if called == "namespace":
                roots.update({t.id: [] for t in node.targets if isinstance(t, ast.Name)})

    namespace_names = set(roots) - numpy_names

    def uses_namespace(fn: ast.AST) -> bool:
        return any(isinstance(n, ast.Name) and n.id in namespace_names for n in ast.walk(fn))

    def visit(node: ast.AST, owner: str, parent: ast.AST | None, device: bool = False, moving: bool = False) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not owner:
            owner = node.name
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            device = device or uses_namespace(node)
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MOVES_TO_DEVICE:
            root, _ = _chain(node.func)
            moving = moving or root in namespace_names  # xp.asarray(np.…(…)): an explicit host-to-device copy
        if device and not moving and isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            root, parts = _chain(node.func)
            if root in numpy_names and (*roots[root], *parts)[0] not in HOST_HELPERS:
                findings.append(Finding(path, line, owner, f"np.{'.'.join((*roots[root], *parts))}(…) in a function that takes "
                                        "its namespace from its inputs: a host array among device arrays (use xp.)"))
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            names = [module] if module else [a.name for a in node.names]
            for name in names:
                if name and name.split(".")[0] in LIBRARIES_NUMPY_ONLY and not (isinstance(node, ast.ImportFrom) and node.level):
                    why = f"imports {name}, a NumPy-only library: go through reference/backend.py"
                    findings.append(Finding(path, line, owner, why))
            if isinstance(node, ast.ImportFrom) and module and module.split(".")[0] == "numpy" and not node.level:
                for alias in node.names:
                    uses.append(Use(path, line, owner, "numpy", (*module.split(".")[1:], alias.name), None))
        if isinstance(node, ast.Attribute) and not isinstance(parent, ast.Attribute):
            root, parts = _chain(node)
            if root in roots:
                call = None
                if isinstance(parent, ast.Call) and parent.func is node:
                    starred = any(isinstance(a, ast.Starred) for a in parent.args)
                    positional = sum(1 for a in parent.args if not isinstance(a, ast.Starred))
                    keywords = tuple(k.arg for k in parent.keywords if k.arg is not None)
                    call = (positional, keywords, starred, any(k.arg is None for k in parent.keywords))
                uses.append(Use(path, line, owner, root, (*roots[root], *parts), call))
        for child in _children(node):
            visit(child, owner, node, device, moving)

    visit(tree, "", None)
    return uses, findings


# --------------------------------------------------------------------------- checking against CuPy's namespace

_KIND = {
    "positional_only": inspect.Parameter.POSITIONAL_ONLY,
    "positional_or_keyword": inspect.Parameter.POSITIONAL_OR_KEYWORD,
    "var_positional": inspect.Parameter.VAR_POSITIONAL,
    "keyword_only": inspect.Parameter.KEYWORD_ONLY,
    "var_keyword": inspect.Parameter.VAR_KEYWORD,
}
UFUNC_ATTRIBUTES = {"nin", "nout", "nargs", "types", "ntypes", "identity", "__name__"}


def _signature(params: list) -> inspect.Signature:
    empty = inspect.Parameter.empty
    return inspect.Signature([inspect.Parameter(name, _KIND[kind], default=None if has_default else empty)
                              for name, kind, has_default in params])


def _fits(params: list, call: tuple) -> str | None:
    """None when a call with ``call``'s shape binds to ``params``, else why not."""
    positional, keywords, starred, double_starred = call
    sig = _signature(params)
    args = [] if starred else [0] * positional
    kwargs = {} if double_starred else dict.fromkeys(keywords, 0)
    try:
        (sig.bind_partial if (starred or double_starred) else sig.bind)(*args, **kwargs)
    except TypeError as exc:
        return f"{exc} (CuPy: {sig})"
    return None


def check_use(use: Use, modules: dict[str, dict]) -> str | None:
    """None when ``use`` is in CuPy's namespace and its call fits, else the reason (one line)."""
    module, chain = "cupy", use.chain
    for i, name in enumerate(chain):
        attrs = modules[module]
        where = f"{module}.{name}"
        if name not in attrs:
            return f"{use.text()}: {where} does not exist in CuPy"
        entry, last = attrs[name], i == len(chain) - 1
        if entry["kind"] == "module":
            if last:
                return None
            module = where
            if module not in modules:
                return f"{use.text()}: {module} is not in the CuPy listing (recorded: {', '.join(sorted(modules))})"
            continue
        if last:
            if use.call is None:
                return None
            if entry["kind"] == "ufunc":
                positional, keywords, starred, _ = use.call
                if not starred and positional > entry["nin"] + entry["nout"]:
                    takes = f"{entry['nin']} (+{entry['nout']} out)"
                    return f"{use.text()}: {positional} positional arguments, CuPy's {where} takes {takes}"
                odd = sorted(set(keywords) - set(entry["kwargs"]))
                return f"{use.text()}: keyword {odd[0]!r} is not accepted by CuPy's ufuncs ({entry['kwargs']})" if odd else None
            params = entry.get("params")
            if params is None:  # no introspectable signature: existence is what can be checked
                return None
            why = _fits(params, use.call)
            return f"{use.text()}: call does not fit {where}: {why}" if why else None
        if entry["kind"] == "ufunc":
            method = chain[i + 1]
            if method in UFUNC_ATTRIBUTES and i + 1 == len(chain) - 1:
                return None
            if method not in entry["methods"]:
                return f"{use.text()}: CuPy does not implement {where}.{method} (it has: {sorted(entry['methods']) or 'none'})"
            if i + 1 != len(chain) - 1:
                return f"{use.text()}: cannot check attributes past {where}.{method}"
            if use.call is None or entry["methods"][method] is None:
                return None
            why = _fits(entry["methods"][method], use.call)
            return f"{use.text()}: call does not fit {where}.{method}: {why}" if why else None
        return f"{use.text()}: cannot check attributes past {where} (a {entry['kind']})"
    return None


# --------------------------------------------------------------------------- the reference tree


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def reference_files() -> list[Path]:
    return sorted(p for p in REFERENCE.rglob("*.py") if _rel(p) not in EXEMPT)


def host_only_entry(path: str, owner: str = "") -> str | None:
    """The :data:`HOST_ONLY` key that covers ``path`` (or its top-level ``owner``), None when it is device-path code."""
    for key in HOST_ONLY:
        file, _, name = key.partition("::")
        if fnmatch.fnmatchcase(path, file) and (not name or name == owner):
            return key
    return None


def device_path_findings(modules: dict[str, dict]) -> tuple[list[Finding], int, dict[str, list[Finding]]]:
    """(findings in device-path code, number of uses checked there, findings per host-only entry)."""
    findings: list[Finding] = []
    checked = 0
    host: dict[str, list[Finding]] = {key: [] for key in HOST_ONLY}
    for path in reference_files():
        rel = _rel(path)
        uses, found = scan_source(path.read_text(encoding="utf-8"), rel)
        found += [Finding(u.path, u.line, u.owner, why) for u in uses if (why := check_use(u, modules))]
        for f in found:
            key = host_only_entry(f.path, f.owner)
            (host[key] if key else findings).append(f)
        checked += sum(1 for u in uses if not host_only_entry(u.path, u.owner))
    return findings, checked, host


def _report(findings: list[Finding]) -> str:
    return f"{len(findings)} use(s) that CuPy cannot run in device-path code:\n" + "\n".join(f"  {f}" for f in findings)


def shipped_listing() -> dict:
    return json.loads(LISTING.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- tests


def test_backend_guard_listing_is_cupys_namespace():
    """The shipped listing is the generator's output for a real CuPy: version, four modules, core names, ufunc methods."""
    listing = shipped_listing()
    assert listing["cupy_version"] and set(listing["modules"]) == {"cupy", "cupy.linalg", "cupy.random", "cupy.fft"}
    cupy = listing["modules"]["cupy"]
    assert len(cupy) > 300 and cupy["linalg"]["kind"] == "module" and cupy["exp"]["kind"] == "ufunc"
    assert "norm" in listing["modules"]["cupy.linalg"] and "default_rng" in listing["modules"]["cupy.random"]
    # CuPy implements reduceat only for add, ``at`` for add / maximum / minimum: the listing must say so
    assert "reduceat" in cupy["add"]["methods"] and "reduceat" not in cupy["maximum"]["methods"]
    assert "at" in cupy["maximum"]["methods"] and "at" not in cupy["exp"]["methods"]
    assert "errstate" not in cupy  # NumPy-only (cupyx.errstate is CuPy's)


def test_backend_guard_device_path_runs_on_cupy():
    """Every np./xp. use of device-path code exists in CuPy (shipped listing) and every call fits its signature."""
    findings, checked, _ = device_path_findings(shipped_listing()["modules"])
    assert checked > 300, f"only {checked} uses checked: the scanner or the allowlist is wrong"
    assert not findings, _report(findings)


def test_backend_guard_device_path_runs_on_live_cupy():
    """The same check against the installed CuPy's own namespace (skipped without CuPy)."""
    pytest.importorskip("cupy", reason="CuPy is not installed: the shipped listing (test above) is the check")
    spec = importlib.util.spec_from_file_location("make_cupy_namespace", GENERATOR)
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    findings, checked, _ = device_path_findings(generator.describe())
    assert checked > 300 and not findings, _report(findings)


def test_backend_guard_allowlist_is_current():
    """Every host-only entry names an existing file (or function) with a reason; a TODO entry still has findings."""
    _, _, host = device_path_findings(shipped_listing()["modules"])
    for key, reason in HOST_ONLY.items():
        pattern, _, owner = key.partition("::")
        files = [p for p in reference_files() if fnmatch.fnmatchcase(_rel(p), pattern)]
        assert files, f"HOST_ONLY names {pattern}, which matches no file: remove the entry"
        assert len(reason) > 10, f"HOST_ONLY[{key!r}]: give the reason"
        if owner:
            tops = {n.name for n in ast.parse(files[0].read_text(encoding="utf-8")).body if hasattr(n, "name")}
            assert owner in tops, f"HOST_ONLY names {key}, but {pattern} has no top-level {owner}"
        if "TODO(issue 16)" in reason:
            assert host[key], f"{key} has no findings any more: remove its TODO(issue 16) entry"


def test_backend_guard_device_path_covers_the_core():
    """The core's device path is scanned, not allowlisted: layers, model, evaluation, optimiser, plug-ins, attention metrics."""
    scanned = {_rel(p) for p in reference_files() if host_only_entry(_rel(p)) is None}
    for must in ("reference/model.py", "reference/evaluation.py", "reference/optim.py", "reference/plugins.py",
                 "reference/metrics/attention.py", "reference/layers/attention.py", "reference/layers/mlp.py",
                 "reference/layers/embedding.py", "reference/layers/layernorm.py", "reference/layers/loss.py",
                 "reference/mechanisms/locality/dial.py", "reference/mechanisms/locality/penalty.py",
                 "reference/mechanisms/locality/plugin.py"):
        assert must in scanned, must


PLANTED = '''
import numpy as np
import numpy.linalg as la
from numpy import errstate
from scipy.special import erf
from reference.backend import namespace

def host(x, s):
    a = np.maximum.reduceat(x, s, axis=-1)           # CuPy: reduceat only for add
    e = la.matrix_power(x, 2, 3)                      # too many positionals
    with np.errstate(over="ignore"):                  # NumPy only
        return np.add.reduceat(x, s, axis=0) + np.linalg.norm(x, axis=-1) + np.random.default_rng(0).random()

def device(x):
    xp = namespace(x)
    b = xp.exp(x, where=x > 0)                        # CuPy ufuncs take no where=
    c = xp.zeros(3, dtype=float, like=x)              # CuPy's zeros has no like=
    d = xp.sum(x, 0, None, None, False, 0, 1, 2)      # too many positionals
    mask = xp.where(np.tril(np.ones((3, 3), dtype=bool)), x, 0.0)   # two host arrays among device arrays
    ok = xp.asarray(np.arange(3)) + np.float64(1.0) + np.prod(x.shape) + np.random.default_rng(0).random()
    return b, c, d, mask, ok

def annotated(y: np.ndarray) -> np.ndarray:
    return y
'''


def test_backend_guard_finds_planted_violations():
    """The scanner and the check find each kind of violation in a planted module, and pass its correct lines."""
    modules = shipped_listing()["modules"]
    uses, findings = scan_source(PLANTED, "planted.py")
    reasons = [str(f) for f in findings] + [why for u in uses if (why := check_use(u, modules))]
    expected = ["imports scipy.special", "maximum.reduceat", "np.linalg.matrix_power", "from numpy import errstate",
                "np.errstate", "'where'", "like", "xp.sum", "np.tril(…)", "np.ones(…)"]
    for bit in expected:
        assert sum(bit.split()[-1] in r for r in reasons) >= 1, (bit, reasons)
    assert len(reasons) == len(expected), "\n".join(reasons)
    ok = [u.text() for u in uses if not check_use(u, modules)]
    assert {"np.add.reduceat", "np.linalg.norm", "np.random.default_rng", "np.arange"} <= set(ok), ok
    assert "np.ndarray" not in {u.text() for u in uses}  # annotations are not uses
    assert not [f for f in findings if f.owner == "host" and "host array" in f.what]  # host functions may build host arrays


def test_backend_guard_scatter_add_avoids_deprecated_cupy_api():
    """backend.scatter_add uses ``cupy.add.at`` on CuPy: ``ndarray.scatter_add`` (and ``cupyx.scatter_add``) are deprecated."""
    tree = ast.parse((REFERENCE / "backend.py").read_text(encoding="utf-8"))
    called = {".".join(_chain(n.func)[1]) for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    assert "add.at" in called and "scatter_add" not in called, called
    assert "at" in shipped_listing()["modules"]["cupy"]["add"]["methods"]


def test_backend_entr_is_scipys_under_numpy_and_autograd():
    """backend.entr (−x ln x, 0 at 0, −inf below 0): SciPy's values on NumPy; the autograd form equals them and differentiates."""
    import autograd
    import numpy as np
    from scipy.special import entr as scipy_entr

    from reference.backend import entr

    x = np.array([0.0, 1e-300, 1e-8, 0.25, 0.5, 1.0, 2.5, -0.1])
    assert np.array_equal(entr(x), scipy_entr(x)) and entr(x)[0] == 0.0 and entr(x)[-1] == -np.inf
    seen = {}

    def traced(v):
        y = entr(v)
        seen["y"] = y._value  # an ArrayBox: the autograd branch ran
        return y[1:-1].sum()

    grad = autograd.grad(traced)(x)
    assert np.allclose(seen["y"], scipy_entr(x), rtol=1e-15, atol=0)
    assert np.allclose(grad[1:-1], -np.log(x[1:-1]) - 1.0, rtol=1e-12)  # d(−x ln x)/dx = −ln x − 1
