"""A small stand-in for the Hugging Face Hub, for the tests: the HTTP endpoints huggingface_hub 2.x calls to
create repos and branches, commit files, read repo info, list files and download files.

It answers "regular" to every preupload question, so huggingface_hub sends every file inline (base64 in
the commit) and no LFS or Xet storage is involved. Tokens: TOKENS maps each accepted token to its user;
any other token gets 401, like a revoked token on the Hub. A private repo is visible to its owner only:
to anyone else it reads as "repository not found", as on the Hub.

    hub = FakeHub().start()       # hub.endpoint is http://127.0.0.1:<free port>
    ...                           # HF_ENDPOINT=hub.endpoint in the process that uses huggingface_hub
    hub.stop()
"""
import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

TOKENS = {"hf_alice_write_token": "alice", "hf_bob_write_token": "bob"}
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
REPO = r"(?P<repo>[\w.-]+/[\w.-]+)"


def git_blob_id(content: bytes) -> str:
    """The id git (and the Hub) gives a file's content: what huggingface_hub compares to skip unchanged files."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, commit: str | None = None, **body):
        super().__init__(message)
        self.status, self.message, self.code, self.commit, self.body = status, message, code, commit, body


@dataclass
class Repo:
    owner: str
    private: bool
    branches: dict = field(default_factory=dict)  # name -> commit id
    snapshots: dict = field(default_factory=dict)  # commit id -> {path: bytes}

    def commit(self, branch: str, files: dict, message: str) -> str:
        parent = self.branches.get(branch, "")
        listing = sorted((path, git_blob_id(content)) for path, content in files.items())
        oid = hashlib.sha1(json.dumps([parent, message, time.time_ns(), listing]).encode()).hexdigest()
        self.snapshots[oid] = dict(files)
        self.branches[branch] = oid
        return oid

    def resolve(self, revision: str) -> str:
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.snapshots:
            return revision
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")


class FakeHub:
    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self.headers: list[dict] = []  # the headers of every request, in the same order (names in lower case)
        self.lock = threading.Lock()
        self._server = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "FakeHub":
        handler = type("Handler", (_Handler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def add_repo(self, repo_id: str, files: dict, private: bool = False) -> str:
        """Seed a repo directly (for states that pixelrnn itself refuses to publish); return the commit id."""
        with self.lock:
            repo = self.repos[repo_id] = Repo(owner=repo_id.split("/")[0], private=private)
            return repo.commit("main", {".gitattributes": GITATTRIBUTES, **files}, "initial commit")

    def files(self, repo_id: str, revision: str = "main") -> dict:
        repo = self.repos[repo_id]
        return dict(repo.snapshots[repo.resolve(revision)])


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub  # set on the subclass made by FakeHub.start

    def log_message(self, format, *args):  # keep test output clean (and never print a header)
        pass

    def do_HEAD(self):
        self._serve("HEAD")

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def _serve(self, method):
        url = urlsplit(self.path)
        self.hub.requests.append((method, url.path))
        self.hub.headers.append({name.lower(): value for name, value in self.headers.items()})
        try:
            for route_method, pattern, action in ROUTES:
                match = re.fullmatch(pattern, url.path)
                if match and route_method == method.replace("HEAD", "GET"):
                    with self.hub.lock:
                        status, body, headers = action(self, **match.groupdict(), query=parse_qs(url.query))
                    break
            else:
                raise HubError(404, f"no such endpoint in the test hub: {method} {url.path}")
        except HubError as error:
            headers = {"X-Error-Message": error.message}
            if error.code:
                headers["X-Error-Code"] = error.code
            if error.commit:
                headers["X-Repo-Commit"] = error.commit
            status, body = error.status, {"error": error.message, **error.body}
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        headers.setdefault("Content-Type", "application/json")
        for name, value in {**headers, "Content-Length": str(len(payload))}.items():
            self.send_header(name, value)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(payload)

    # -- requests -------------------------------------------------------------------------------
    def body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().strip(), 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def user(self) -> str | None:
        header = self.headers.get("Authorization")
        if not header:
            return None
        token = header.removeprefix("Bearer ").strip()
        if token not in TOKENS:
            raise HubError(401, "Invalid credentials in Authorization header")
        return TOKENS[token]

    def readable(self, repo_id) -> Repo:
        user = self.user()
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and repo.owner != user):
            raise HubError(401 if user is None else 404, "Repository not found", "RepoNotFound")
        return repo

    def writable(self, repo_id) -> tuple[Repo, str]:
        repo, user = self.readable(repo_id), self.user()
        if user is None:
            raise HubError(401, "You must be authenticated to write to a repo")
        if repo.owner != user:
            raise HubError(403, f"You don't have the rights to write to {repo_id}")
        return repo, user

    # -- endpoints ------------------------------------------------------------------------------
    def whoami(self, query):
        user = self.user()
        if user is None:
            raise HubError(401, "Invalid username or password.")
        return 200, {"type": "user", "name": user, "fullname": user, "orgs": [], "auth": {"type": "access_token"}}, {}

    def create_repo(self, query):
        user = self.user()
        if user is None:
            raise HubError(401, "You must be authenticated to create a repo")
        payload = json.loads(self.body())
        namespace = payload.get("organization") or user
        repo_id = f"{namespace}/{payload['name']}"
        if namespace != user:
            raise HubError(403, f'You don\'t have the rights to create a model under the namespace "{namespace}"')
        if payload.get("type", "model") != "model":
            raise HubError(400, "the test hub only has model repos")
        if repo_id in self.hub.repos:
            raise HubError(409, "You already created this model repo", url=f"{self.hub.endpoint}/{repo_id}")
        private = payload.get("visibility") == "private" or payload.get("private") is True
        repo = self.hub.repos[repo_id] = Repo(owner=user, private=private)
        repo.commit("main", {".gitattributes": GITATTRIBUTES}, "initial commit")
        return 200, {"url": f"{self.hub.endpoint}/{repo_id}", "name": repo_id}, {}

    def validate_yaml(self, query):
        content = json.loads(self.body())["content"]
        match = re.match(r"---\n(.*?)\n---\n", content, re.DOTALL)
        try:
            metadata = yaml.safe_load(match.group(1)) if match else {}
        except yaml.YAMLError as error:
            return 400, {"errors": [{"message": f"invalid YAML: {error}"}], "warnings": []}, {}
        if not isinstance(metadata, dict):
            return 400, {"errors": [{"message": "metadata must be a YAML mapping"}], "warnings": []}, {}
        return 200, {"errors": [], "warnings": []}, {}

    def create_branch(self, repo, branch, query):
        repo_obj, _ = self.writable(repo)
        branch = unquote(branch)
        payload = json.loads(self.body() or b"{}")
        start = repo_obj.resolve(payload.get("startingPoint") or "main")
        if branch in repo_obj.branches:
            raise HubError(409, "Reference already exists")
        repo_obj.branches[branch] = start
        return 200, {}, {}

    def preupload(self, repo, revision, query):
        repo_obj, _ = self.writable(repo)
        current = repo_obj.snapshots[repo_obj.resolve(unquote(revision))]
        files = json.loads(self.body())["files"]
        answers = [
            {
                "path": file["path"],
                "uploadMode": "regular",  # inline base64 in the commit: no LFS, no Xet
                "shouldIgnore": False,
                "oid": git_blob_id(current[file["path"]]) if file["path"] in current else None,
            }
            for file in files
        ]
        return 200, {"files": answers, "commitOid": repo_obj.resolve(unquote(revision))}, {}

    def commit(self, repo, revision, query):
        repo_obj, _ = self.writable(repo)
        branch = unquote(revision)
        if branch not in repo_obj.branches:
            raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        files = dict(repo_obj.snapshots[repo_obj.branches[branch]])
        message = "commit"
        for line in self.body().splitlines():
            item = json.loads(line)
            value = item["value"]
            if item["key"] == "header":
                message = value["summary"]
            elif item["key"] == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif item["key"] == "deletedFile":
                files.pop(value["path"], None)
            else:
                raise HubError(400, f"the test hub takes files inline only, not {item['key']}")
        oid = repo_obj.commit(branch, files, message)
        return 200, {"commitUrl": f"{self.hub.endpoint}/{repo}/commit/{oid}", "commitOid": oid, "pullRequestUrl": None}, {}

    def refs(self, repo, query):
        repo_obj = self.readable(repo)
        branches = [{"name": name, "ref": f"refs/heads/{name}", "targetCommit": oid} for name, oid in repo_obj.branches.items()]
        return 200, {"branches": branches, "converts": [], "tags": [], "pullRequests": []}, {}

    def tree(self, repo, revision, path, query):
        repo_obj = self.readable(repo)
        files = repo_obj.snapshots[repo_obj.resolve(unquote(revision))]
        prefix = unquote(path or "").strip("/")
        entries = [
            {"type": "file", "path": name, "size": len(content), "oid": git_blob_id(content)}
            for name, content in sorted(files.items())
            if not prefix or name.startswith(prefix + "/")
        ]
        return 200, entries, {}

    def model_info(self, repo, revision, query):
        repo_obj = self.readable(repo)
        sha = repo_obj.resolve(unquote(revision or "main"))
        siblings = [{"rfilename": name} for name in sorted(repo_obj.snapshots[sha])]
        info = {"id": repo, "modelId": repo, "author": repo_obj.owner, "sha": sha, "private": repo_obj.private,
                "disabled": False, "gated": False, "siblings": siblings, "tags": []}  # fmt: skip
        return 200, info, {}

    def resolve(self, repo, revision, path, query):
        repo_obj = self.readable(repo)
        sha = repo_obj.resolve(unquote(revision))
        name = unquote(path)
        files = repo_obj.snapshots[sha]
        if name not in files:
            raise HubError(404, "Entry not found", "EntryNotFound", commit=sha)
        content = files[name]
        headers = {"X-Repo-Commit": sha, "ETag": f'"{git_blob_id(content)}"', "Content-Type": "application/octet-stream"}
        return 200, content, headers


ROUTES = [
    ("GET", r"/api/whoami-v2", _Handler.whoami),
    ("POST", r"/api/repos/create", _Handler.create_repo),
    ("POST", r"/api/validate-yaml", _Handler.validate_yaml),
    ("POST", rf"/api/models/{REPO}/branch/(?P<branch>[^/]+)", _Handler.create_branch),
    ("POST", rf"/api/models/{REPO}/preupload/(?P<revision>[^/]+)", _Handler.preupload),
    ("POST", rf"/api/models/{REPO}/commit/(?P<revision>[^/]+)", _Handler.commit),
    ("GET", rf"/api/models/{REPO}/refs", _Handler.refs),
    ("GET", rf"/api/models/{REPO}/tree/(?P<revision>[^/]+)(?:/(?P<path>.+))?", _Handler.tree),
    ("GET", rf"/api/models/{REPO}(?:/revision/(?P<revision>[^/]+))?", _Handler.model_info),
    ("GET", rf"/{REPO}/resolve/(?P<revision>[^/]+)/(?P<path>.+)", _Handler.resolve),
]
