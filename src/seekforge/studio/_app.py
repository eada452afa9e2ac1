"""The studio's web application (FastAPI): server-rendered pages, a JSON API under ``/api``, and server-sent
events that carry a running run's new epochs to its page as they are written.

Every route only reads: run folders are opened read-only and never locked, so a run in progress is never
held up by the studio watching it.

(No ``from __future__ import annotations`` here: FastAPI reads the route functions' annotations, and
``Request`` is imported where the app is made, fastapi being an optional dependency.)
"""

import asyncio
import difflib
import json
import math
import os
from collections.abc import AsyncIterator, Collection, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from seekforge.core.api_keys import api_key_of, key_accepted
from seekforge.core.deps import require
from seekforge.core.errors import ConfigError, SeekforgeError
from seekforge.core.prediction_log import json_safe
from seekforge.registry import location
from seekforge.studio import _pages
from seekforge.studio._drift import LogWatch
from seekforge.studio._inside import Insides, explanation_of, looks_inside
from seekforge.studio._packages import PackageIndex, manifest_of
from seekforge.studio._recipes import check_recipe, draft_from, preview, start_run
from seekforge.studio._registry import RegistryView, label
from seekforge.studio._runs import SORT_KEYS, STATUSES, RunIndex, curves, read_metrics
from seekforge.studio._serving import ServerWatch
from seekforge.studio._studies import TRIAL_SORTS, StudyIndex, history, parameters, trial_page
from seekforge.studio._weights import WeightLogs

STATIC = Path(__file__).parent / "static"
#: how often a followed run's metrics file is looked at, and how long a quiet stream waits between pings
POLL_SECONDS = 0.5
PING_SECONDS = 15.0
COOKIE = "seekforge_studio_key"


def create_app(
    runs: Path,
    *,
    api_keys: Collection[str] = (),
    servers: Sequence[str] = (),
    server_key: str | None = None,
    logs: Sequence[Path] = (),
    data_root: Path | None = None,
    recipes: Path | None = None,
    registry: str | Path | None = None,
) -> Any:
    """The studio over the run folders under ``runs``, and the running servers at ``servers`` (URLs; read with
    ``server_key`` where they need one); with ``api_keys``, every route but the sign-in page needs one of
    them (``x-api-key``, ``Authorization: Bearer``, or the cookie the sign-in page sets). The model registry
    is ``registry``, else ``$SEEKFORGE_REGISTRY``, else ``runs/registry.db`` (as the other commands find it),
    opened read-only."""
    require("fastapi", purpose="seekforge studio")
    from fastapi import FastAPI, HTTPException, Query, Request
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
    from fastapi.staticfiles import StaticFiles

    index = RunIndex(runs)
    studies = StudyIndex(runs)
    packages = PackageIndex(runs)
    weights = WeightLogs()
    insides = Insides()
    registered = RegistryView(location(registry))  # as every other command finds it
    watches = [ServerWatch(url, api_key=server_key) for url in servers]
    logs = [LogWatch(Path(log)) for log in logs]
    data_root = data_root or Path.cwd()  # data files a page may preview or run on are under it
    recipes = recipes or data_root / "recipes"  # where recipes built here are saved
    started: list[Any] = []  # the runs started here, reaped when they end
    app = FastAPI(title="seekforge studio", docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if not api_keys:  # on loopback without keys: refuse other Host names (a DNS-rebinding page's requests)
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", "[::1]", "::1"])

    @app.middleware("http")
    async def _key(request: Request, call_next: Any) -> Any:
        path = request.url.path
        if api_keys and path != "/signin" and not path.startswith("/static/"):
            key = api_key_of(request.headers) or request.cookies.get(COOKIE)
            if not key_accepted(api_keys, key):
                if path.startswith("/api/"):
                    return JSONResponse({"detail": "a valid API key is required"}, status_code=401)
                target = path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/signin?{urlencode({'next': target})}", status_code=303)
        response = await call_next(request)
        if path.endswith("/report"):  # a report page made elsewhere runs in an origin of its own
            response.headers["Content-Security-Policy"] = "sandbox allow-scripts"
        return response

    def run_folder(name: str, stamp: str) -> Path:
        folder = index.find(f"{name}/{stamp}")
        if folder is None:
            raise HTTPException(404, f"no run {name}/{stamp} under {runs}")
        return folder

    def listing(offset: int, limit: int, sort: str, order: str, q: str, status: str | None) -> dict[str, Any]:
        if sort not in SORT_KEYS:
            raise HTTPException(422, f"sort must be one of {', '.join(SORT_KEYS)}")
        if status is not None and status not in STATUSES:
            raise HTTPException(422, f"status must be one of {', '.join(STATUSES)}")
        total, page = index.page(offset=offset, limit=limit, sort=sort, descending=order == "desc", query=q,
                                 status=status)  # fmt: skip
        marks = registered.by_package()  # the registry's versions of each run's package
        found = [{**r.to_dict(), "registered": [label(m) for m in marks.get(os.path.realpath(runs / r.id / "package"), [])]}
                 for r in page]  # fmt: skip
        return {"total": total, "offset": offset, "limit": limit, "runs": found}

    @app.get("/api/runs")
    def api_runs(offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=500), sort: str = "started",
                 order: str = Query("desc", pattern="^(asc|desc)$"), q: str = "", status: str | None = None) -> Any:  # fmt: skip
        """Runs, a page at a time, sorted and filtered (``q``: part of a name, model type or status)."""
        return listing(offset, limit, sort, order, q, status)

    @app.get("/api/runs/{name}/{stamp}")
    def api_run(name: str, stamp: str) -> Any:
        """One run: its summary and its recipe as written."""
        folder = run_folder(name, stamp)
        summary = index.summary(folder)
        return {**summary.to_dict(), "recipe": _text(folder / "recipe.yaml")} if summary else {}

    @app.get("/api/runs/{name}/{stamp}/curves")
    def api_curves(name: str, stamp: str, points: int = Query(500, ge=2, le=20_000)) -> Any:
        """Its series by epoch, each at most ``points`` long."""
        return curves(run_folder(name, stamp), points=points).to_dict()

    @app.get("/api/runs/{name}/{stamp}/weights")
    def api_weights(name: str, stamp: str, layer: str | None = None, epoch: int | None = None,
                    points: int = Query(200, ge=2, le=5000)) -> Any:  # fmt: skip
        """A layer's weight distribution by epoch (quantiles), its gradient norm, and its histogram at
        ``epoch`` (default: the last) beside the first epoch's; the layers the run records."""
        return json_safe(weights.view(run_folder(name, stamp), layer=layer, epoch=epoch, points=points))

    @app.get("/api/runs/{name}/{stamp}/events")
    async def api_events(request: Request, name: str, stamp: str, since: int = Query(0, ge=0)) -> Any:
        """Server-sent events: each epoch written after line ``since`` of the run's metrics, as it comes."""
        metrics = run_folder(name, stamp) / "metrics.jsonl"

        resumed = request.headers.get("last-event-id", "")
        start = int(resumed) if resumed.isdigit() else since  # a reconnecting browser says what it has

        async def stream() -> AsyncIterator[str]:
            seen, quiet = start, 0.0
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                records, bad, count = await asyncio.to_thread(read_metrics, metrics, start=seen)
                if count > seen:
                    for record in records:
                        yield f"data: {json.dumps(_finite(record), default=str)}\n\n"
                    for line in bad:
                        yield f"event: bad_line\ndata: {line}\n\n"
                    yield f"id: {count}\n\n"  # where a reconnection picks up
                    seen, quiet = count, 0.0
                elif count < seen:  # rewritten shorter (a run resumed from an earlier checkpoint)
                    yield "event: reset\ndata: {}\n\n"
                    return
                elif (metrics.parent / "package" / "package.json").exists():  # finished: nothing more will come
                    yield "event: done\ndata: {}\n\n"
                    return
                elif quiet >= PING_SECONDS:
                    yield ": still here\n\n"
                    quiet = 0.0
                await asyncio.sleep(POLL_SECONDS)
                quiet += POLL_SECONDS

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.get("/", response_class=HTMLResponse)
    def runs_page(offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=500), sort: str = "started",
                  order: str = Query("desc", pattern="^(asc|desc)$"), q: str = "", status: str | None = None) -> Any:  # fmt: skip
        found = listing(offset, limit, sort, order, q, status)
        return _pages.runs_page(found, runs=runs, sort=sort, order=order, query=q, status=status)

    @app.get("/runs/{name}/{stamp}", response_class=HTMLResponse)
    def run_page(name: str, stamp: str) -> Any:
        folder = run_folder(name, stamp)
        summary = index.summary(folder)
        reports = [p for p in ("package/report.html", "report.html") if (folder / p).is_file()]
        return _pages.run_page(summary, recipe=_text(folder / "recipe.yaml"), report=bool(reports))

    @app.get("/runs/{name}/{stamp}/report")
    def run_report(name: str, stamp: str) -> Any:
        folder = run_folder(name, stamp)
        for path in (folder / "package" / "report.html", folder / "report.html"):
            if path.is_file():
                return FileResponse(path, media_type="text/html")
        raise HTTPException(404, f"run {name}/{stamp} has no report yet")

    @app.get("/compare", response_class=HTMLResponse)
    def compare_page(ids: str = Query(..., description="run ids name/stamp, comma-separated")) -> Any:
        chosen = [i for i in dict.fromkeys(ids.split(",")) if i]
        if not 2 <= len(chosen) <= 8:
            raise HTTPException(422, "compare 2 to 8 runs")
        folders = [index.find(i) for i in chosen]
        if None in folders:
            raise HTTPException(404, f"no run {chosen[folders.index(None)]} under {runs}")
        recipes = [_text(f / "recipe.yaml") for f in folders]  # type: ignore[operator]
        diff = "".join(difflib.unified_diff(recipes[0].splitlines(True), recipes[1].splitlines(True),
                                            fromfile=chosen[0], tofile=chosen[1]))  # fmt: skip
        return _pages.compare_page(chosen, diff=diff)

    def study_folder(name: str, stamp: str) -> Path:
        folder = studies.find(f"{name}/{stamp}")
        if folder is None:
            raise HTTPException(404, f"no study {name}/{stamp} under {runs}")
        return folder

    def reachable(name: str, stamp: str) -> tuple[Path, Any, list[dict[str, Any]]]:
        """The study's folder, summary and trials; 503 when its storage cannot be read (now or already)."""
        folder = study_folder(name, stamp)
        summary = studies.summary(folder)
        try:
            if summary.status == "unreachable":
                raise LookupError(summary.problem)
            trials = studies.trials(folder)[0]
        except Exception as exc:  # the storage went away between the two readings
            raise HTTPException(503, f"the study's storage cannot be read: {exc}") from None
        return folder, summary, trials

    def study_view(name: str, stamp: str, offset: int, limit: int, sort: str, order: str) -> dict[str, Any]:
        if sort not in TRIAL_SORTS:
            raise HTTPException(422, f"sort must be one of {', '.join(TRIAL_SORTS)}")
        folder = study_folder(name, stamp)
        summary = studies.summary(folder)
        trials = [] if summary.status == "unreachable" else studies.trials(folder)[0]
        page = trial_page(trials, offset=offset, limit=limit, sort=sort, descending=order == "desc",
                          direction=summary.direction)  # fmt: skip
        return {"study": summary.to_dict(), "total": len(trials), "offset": offset, "limit": limit, "trials": page}

    @app.get("/api/studies")
    def api_studies() -> Any:
        """Every study under the folder: its state, how many trials in each state, its best trial."""
        return {"studies": [s.to_dict() for s in studies.summaries()]}

    @app.get("/api/studies/{name}/{stamp}")
    def api_study(name: str, stamp: str, offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=1000),
                  sort: str = "number", order: str = Query("desc", pattern="^(asc|desc)$")) -> Any:  # fmt: skip
        """A study and a page of its trials (``sort``: number, value (best first), state, duration)."""
        return study_view(name, stamp, offset, limit, sort, order)

    @app.get("/api/studies/{name}/{stamp}/history")
    def api_history(name: str, stamp: str, points: int = Query(2000, ge=2, le=100_000)) -> Any:
        """Each complete trial's value and the best so far, by trial number."""
        _, summary, trials = reachable(name, stamp)
        return {**history(trials, summary.direction, points=points), "status": summary.status}

    @app.get("/api/studies/{name}/{stamp}/parameters")
    def api_parameters(name: str, stamp: str, limit: int = Query(300, ge=10, le=5000)) -> Any:
        """The complete trials' parameters and values placed on parallel axes (at most ``limit`` trials)."""
        _, summary, trials = reachable(name, stamp)
        return parameters(trials, summary.direction, limit=limit)

    @app.get("/api/studies/{name}/{stamp}/importance")
    async def api_importance(name: str, stamp: str) -> Any:
        """Each parameter's importance over the trials complete so far, as the study's report weighs it."""
        folder, _, _ = await asyncio.to_thread(reachable, name, stamp)
        try:
            return await asyncio.to_thread(studies.importance, folder)
        except Exception as exc:  # the storage went away, or a damaged trial Optuna will not take
            raise HTTPException(503, f"cannot weigh the study's parameters: {type(exc).__name__}: {exc}") from None

    @app.get("/studies", response_class=HTMLResponse)
    def studies_page() -> Any:
        return _pages.studies_page([s.to_dict() for s in studies.summaries()], runs=runs)

    @app.get("/studies/{name}/{stamp}", response_class=HTMLResponse)
    def study_page(name: str, stamp: str, offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=1000),
                   sort: str = "number", order: str = Query("desc", pattern="^(asc|desc)$")) -> Any:  # fmt: skip
        view = study_view(name, stamp, offset, limit, sort, order)
        report = (study_folder(name, stamp) / "report.html").is_file()
        return _pages.study_page(view, sort=sort, order=order, report=report)

    @app.get("/studies/{name}/{stamp}/report")
    def study_report(name: str, stamp: str) -> Any:
        path = study_folder(name, stamp) / "report.html"
        if not path.is_file():
            raise HTTPException(404, f"study {name}/{stamp} has no report yet (it is written when the study ends)")
        return FileResponse(path, media_type="text/html")

    def package_folder(package_id: str) -> Path:
        folder = packages.find(package_id)
        if folder is None:
            raise HTTPException(404, f"no package {package_id} under {runs}")
        return folder

    @app.get("/api/packages")
    def api_packages() -> Any:
        """Every package under the folder: what it is, its test metric, its exports and their verdicts."""
        return {"packages": [p.to_dict() for p in packages.summaries()]}

    @app.get("/api/packages/{package_id:path}")
    def api_package(package_id: str) -> Any:
        """A package's manifest (package.json) and its lineage, newest first."""
        folder = package_folder(package_id)
        return {"manifest": manifest_of(folder), "lineage": packages.lineage(folder)}

    @app.get("/packages", response_class=HTMLResponse)
    def packages_page() -> Any:
        return _pages.packages_page([p.to_dict() for p in packages.summaries()], runs=runs)

    @app.get("/api/inside/{package_id:path}")
    async def api_inside(package_id: str, row: int = Query(0, ge=0)) -> Any:
        """The package's model on its held-out row ``row``: its prediction, and a transformer's attention
        weights per layer and head or a CNN's feature maps per block (the model is loaded on first use)."""
        folder = package_folder(package_id)
        try:
            return json_safe(await asyncio.to_thread(insides.look, folder, row))  # a diverged model's NaN: null
        except SeekforgeError as exc:
            raise HTTPException(422, exc.message) from None
        except Exception as exc:  # a damaged or vanished file of the package: said, never a 500
            raise HTTPException(422, f"cannot run {package_id} on row {row}: {type(exc).__name__}: {exc}") from None

    @app.get("/packages/{package_id:path}/explain/report")
    def explanation_report(package_id: str) -> Any:
        found = explanation_of(package_folder(package_id))
        if found is None or not (found[0] / "report.html").is_file():
            raise HTTPException(404, f"package {package_id} has no explanation (seekforge explain PACKAGE)")
        return FileResponse(found[0] / "report.html", media_type="text/html")

    @app.get("/packages/{package_id:path}/report")
    def package_report(package_id: str) -> Any:
        path = package_folder(package_id) / "report.html"
        if not path.is_file():
            raise HTTPException(404, f"package {package_id} has no report")
        return FileResponse(path, media_type="text/html")

    @app.get("/packages/{package_id:path}", response_class=HTMLResponse)
    def package_page(package_id: str) -> Any:
        folder = package_folder(package_id)
        summary, manifest = packages.summary(folder), manifest_of(folder)
        if summary is None or manifest is None:
            raise HTTPException(404, f"package {package_id} has no readable package.json")
        marks = registered.by_package().get(os.path.realpath(folder), [])
        explained = explanation_of(folder)
        return _pages.package_page(summary.to_dict(), manifest, lineage=packages.lineage(folder),
                                   card=_text(folder / "model_card.md"), report=(folder / "report.html").is_file(),
                                   registered=marks, explanation=explained[1] if explained else None,
                                   inside=looks_inside(manifest))  # fmt: skip

    @app.get("/api/registry")
    def api_registry() -> Any:
        """The registry's models: each version (aliases, metrics, gates, package) and who did what when."""
        return registered.read()

    @app.get("/registry", response_class=HTMLResponse)
    def registry_page() -> Any:
        found = registered.read()
        inside = {m["name"]: {v["version"]: packages.id_of(Path(v["package"])) for v in m["versions"]}
                  for m in found["models"]}  # fmt: skip
        return _pages.registry_page(found, inside=inside)

    @app.get("/api/servers")
    def api_servers() -> Any:
        """The servers this studio was started to watch (``seekforge studio --server URL``)."""
        return {"servers": [{"index": i, "url": w.url} for i, w in enumerate(watches)]}

    @app.get("/api/servers/{index}")
    async def api_server(index: int) -> Any:
        """A server's metrics now, and the rates and latency percentiles since the reading before."""
        if not 0 <= index < len(watches):
            raise HTTPException(404, f"no server {index}; this studio watches {len(watches)}")
        return await asyncio.to_thread(watches[index].read)

    @app.get("/serving", response_class=HTMLResponse)
    def serving_page() -> Any:
        return _pages.serving_page([w.url for w in watches])

    @app.get("/api/drift")
    def api_logs() -> Any:
        """The prediction logs this studio was started to watch (``seekforge studio --log PATH``)."""
        return {"logs": [{"index": i, "log": str(w.log)} for i, w in enumerate(logs)]}

    @app.get("/api/drift/{index}")
    async def api_drift(index: int, window: float = Query(3600.0, gt=0, le=366 * 86400),
                        windows: int = Query(24, ge=1, le=500)) -> Any:  # fmt: skip
        """Drift of the log, per window of ``window`` seconds (the last ``windows`` ones) and per feature."""
        if not 0 <= index < len(logs):
            raise HTTPException(404, f"no log {index}; this studio watches {len(logs)}")
        return await asyncio.to_thread(logs[index].windows, window_seconds=window, count=windows)

    @app.get("/drift", response_class=HTMLResponse)
    def drift_page(window: float = Query(3600.0, gt=0, le=366 * 86400), windows: int = Query(24, ge=1, le=500)) -> Any:
        return _pages.drift_page([str(w.log) for w in logs], window=window, windows=windows)

    @app.get("/api/schema/recipe")
    def api_schema() -> Any:
        """The recipe's JSON schema (as ``seekforge schema recipe`` prints it): the form is made from it."""
        from seekforge.core.config import json_schema
        from seekforge.recipe import Recipe

        return json_schema(Recipe, title="seekforge recipe")

    @app.post("/api/recipes/check")
    async def api_check(request: Request) -> Any:
        """Every problem of a draft recipe (JSON body), each at its dotted path, and the draft as YAML."""
        return check_recipe(await _json_body(request))

    @app.get("/api/data/preview")
    def api_preview(source: str) -> Any:
        """The first rows of a data file under the studio's data folder and its columns' inferred types."""
        try:
            return preview(data_root, source)
        except SeekforgeError as exc:
            raise HTTPException(422, exc.message) from None

    @app.get("/api/data/draft")
    def api_draft(source: str, label: str) -> Any:
        """A draft recipe for a data file and the column to predict (as ``seekforge init --from``)."""
        try:
            return draft_from(data_root, source, label)
        except SeekforgeError as exc:
            raise HTTPException(422, exc.message) from None

    @app.post("/api/recipes/run")
    async def api_start(request: Request) -> Any:
        """Save the draft as YAML and start ``seekforge run`` on it; 422 with every problem if it is invalid."""
        draft = await _json_body(request)
        for process in list(started):  # reap the runs that ended
            if process.poll() is not None:
                started.remove(process)
        try:
            answer, process = start_run(draft, recipes=recipes, runs=runs, data_root=data_root)
        except ConfigError:
            return JSONResponse(check_recipe(draft), status_code=422)
        started.append(process)
        return answer

    @app.get("/new", response_class=HTMLResponse)
    def new_recipe() -> Any:
        return _pages.recipe_page(data_root=data_root)

    @app.get("/signin", response_class=HTMLResponse)
    def signin(next: str = "/") -> Any:
        return _pages.signin_page(_local(next))

    @app.post("/signin", response_class=HTMLResponse)
    async def signin_post(request: Request) -> Any:
        """The key from the form, checked; then a cookie scripts cannot read, and on to the page asked for."""
        body = await request.body()
        form = parse_qs(body[:8192].decode("utf-8", errors="replace"))
        key, target = (form.get("key") or [""])[0], _local((form.get("next") or ["/"])[0])
        if not key_accepted(api_keys, key):
            return HTMLResponse(_pages.signin_page(target, refused=True), status_code=401)
        answer = RedirectResponse(target, status_code=303)
        answer.set_cookie(COOKIE, key, httponly=True, samesite="strict", path="/")
        return answer

    return app


async def _json_body(request: Any) -> Any:
    """The request's JSON body (at most 1 MiB); 422 when it is not JSON."""
    from fastapi import HTTPException

    body = await request.body()
    if len(body) > 1 << 20:
        raise HTTPException(413, "a recipe is at most 1 MiB")
    try:
        return json.loads(body)
    except ValueError:
        raise HTTPException(422, "the body is not JSON") from None


def _finite(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with NaN and infinities (a diverging run's loss, a gradient norm) as null: JSON has none."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}


def _local(target: str) -> str:
    """``target`` when it is a path on this site (not another host, not a scheme), else ``/``."""
    parts = urlsplit(target)
    unsafe = parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//")
    if unsafe or "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return "/"
    return target


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
