"""Fetching the official archives: checksums verified, downloads resumed, unpacking atomic.

Downloads go through `pooch <https://www.fatiando.org/pooch>`_ (hash verification, retries,
atomic placement of the finished file) with a resumable HTTP downloader built on requests: a
partial download is kept as ``<dest>/.downloads/<file>.part`` and continued with an HTTP
``Range`` request the next time. An archive is unpacked into a temporary folder and moved into
place only when complete; a marker ``<dest>/.asdstudy/<archive>.json`` written last says that
it is. A folder without its marker is never taken for a complete dataset.

Checksums: the DCASE 2020 Task 2 archives' MD5s are pinned in
``asdstudy/data/dcase2020_task2_archives.csv``. For the other records (DCASE 2021/2023, MIMII)
the checksums are read from the Zenodo record's published metadata at download time
(``https://zenodo.org/api/records/<id>``), so every archive is still verified.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from .. import ASDStudyError

ZENODO_API = os.environ.get("ASDSTUDY_ZENODO_API", "https://zenodo.org/api")


class DownloadError(ASDStudyError):
    pass


@dataclass(frozen=True)
class Archive:
    dataset: str
    machine: str
    filename: str
    url: str
    md5: str | None  # None: take it from the record's metadata
    record: str | None = None


#: Zenodo records of the datasets the study reads, and how their archives are named.
RECORDS = {
    "dcase2021-dev": ("4562016", "dev_data_{machine}.zip",
                      ("fan", "gearbox", "pump", "slider", "ToyCar", "ToyTrain", "valve")),
    "dcase2021-eval-train": ("4660992", "eval_data_{machine}_train.zip",
                             ("fan", "gearbox", "pump", "slider", "ToyCar", "ToyTrain", "valve")),
    "dcase2023-dev": ("7882613", "dev_{machine}.zip",
                      ("bearing", "fan", "gearbox", "slider", "ToyCar", "ToyTrain", "valve")),
    "mimii": ("3384388", "{snr}_{machine}.zip", ("fan", "pump", "slider", "valve")),
}
DCASE2020_SUBSETS = {"dcase2020-dev": "development", "dcase2020-add": "additional_training",
                     "dcase2020-eval": "evaluation"}
DATASETS = tuple(DCASE2020_SUBSETS) + tuple(RECORDS)


def dcase2020_archives() -> pd.DataFrame:
    """The DCASE 2020 Task 2 archives with their pinned MD5s."""
    with resources.files("asdstudy").joinpath("data/dcase2020_task2_archives.csv").open() as fh:
        return pd.read_csv(fh)


def record_checksums(record: str, api: str | None = None, timeout: float = 30) -> dict[str, str]:
    """{filename: md5} from a Zenodo record's published metadata."""
    import requests

    url = f"{api or ZENODO_API}/records/{record}"
    try:
        r = requests.get(url, timeout=timeout)
        r.raise_for_status()
        meta = r.json()
    except Exception as exc:
        raise DownloadError(f"could not read the checksums of Zenodo record {record} from {url} "
                            f"({exc}). Check the network, or pass --md5 for the archive.") from exc
    out = {}
    for f in meta.get("files", []):
        key = f.get("key") or f.get("filename")
        checksum = f.get("checksum", "")
        if key and checksum.startswith("md5:"):
            out[key] = checksum[4:]
    return out


def archives(dataset: str, machines=None, snrs=("-6_dB", "0_dB", "6_dB"), base_url: str | None = None
             ) -> list[Archive]:
    """The archives of a dataset (optionally only some machine types)."""
    if dataset in DCASE2020_SUBSETS:
        df = dcase2020_archives()
        df = df[df["subset"] == DCASE2020_SUBSETS[dataset]]
        known = sorted(df["machine"])
        rows = df.to_dict("records")
        if machines:
            bad = sorted(set(machines) - set(known))
            if bad:
                raise DownloadError(f"{dataset} has no machine type {', '.join(bad)}; choose from {', '.join(known)}.")
            rows = [r for r in rows if r["machine"] in machines]
        out = []
        for r in rows:
            url = r["url"] if not base_url else f"{base_url.rstrip('/')}/{r['filename']}"
            out.append(Archive(dataset, r["machine"], r["filename"], url, r["md5"]))
        return out
    if dataset not in RECORDS:
        raise DownloadError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}.")
    record, pattern, known = RECORDS[dataset]
    chosen = list(machines) if machines else list(known)
    bad = sorted(set(chosen) - set(known))
    if bad:
        raise DownloadError(f"{dataset} has no machine type {', '.join(bad)}; choose from {', '.join(known)}.")
    names = []
    for m in chosen:
        if "{snr}" in pattern:
            names += [(m, pattern.format(snr=s, machine=m)) for s in snrs]
        else:
            names.append((m, pattern.format(machine=m)))
    base = base_url.rstrip("/") if base_url else f"https://zenodo.org/record/{record}/files"
    return [Archive(dataset, m, n, f"{base}/{n}", None, record) for m, n in names]


class ResumableDownloader:
    """A pooch downloader that continues an interrupted download with an HTTP Range request.

    The bytes received so far live in ``<partial_dir>/<name>.part``; pooch hands over a
    temporary output file, which receives the finished download.
    """

    def __init__(self, partial_dir: Path, progressbar: bool = True, chunk_size: int = 1 << 16,
                 timeout: float = 60):
        self.partial_dir = Path(partial_dir)
        self.progressbar = progressbar
        self.chunk_size = chunk_size
        self.timeout = timeout

    def __call__(self, url: str, output_file, pooch_obj=None, check_only: bool = False):
        import requests
        from tqdm.auto import tqdm

        if check_only:
            return requests.head(url, timeout=self.timeout, allow_redirects=True).ok
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        part = self.partial_dir / (Path(url).name + ".part")
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        with requests.get(url, headers=headers, stream=True, timeout=self.timeout) as r:
            if r.status_code == 416:  # already complete
                pass
            else:
                r.raise_for_status()
                if have and r.status_code != 206:  # server ignored Range: start again
                    have = 0
                mode = "ab" if have else "wb"
                total = int(r.headers.get("Content-Length", 0)) + have
                with open(part, mode) as fh, tqdm(total=total or None, initial=have, unit="B",
                                                  unit_scale=True, desc=Path(url).name,
                                                  disable=not self.progressbar) as bar:
                    for chunk in r.iter_content(self.chunk_size):
                        fh.write(chunk)
                        bar.update(len(chunk))
        out = output_file if isinstance(output_file, (str, os.PathLike)) else output_file.name
        shutil.copyfile(part, out)
        part.unlink()


def fetch_file(url: str, folder: str | Path, filename: str, md5: str, progress: bool = True) -> Path:
    """Download one file into ``folder`` (resuming a partial download) and verify its MD5.

    Raises:
        DownloadError: checksum mismatch (the bad file is deleted) or network failure (what
            arrived is kept for resuming).
    """
    import pooch
    import requests

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with _DestLock(folder):
        for orphan in folder.glob("tmp*"):  # pooch's temporary file of a download that was killed
            if orphan.is_file():
                orphan.unlink()
        part = folder / "partial" / (Path(url).name + ".part")
        try:
            return Path(pooch.retrieve(url, known_hash=f"md5:{md5}", fname=filename, path=folder,
                                       downloader=ResumableDownloader(folder / "partial", progress), progressbar=False))
        except ValueError as exc:  # pooch: hash mismatch (the file is removed)
            raise DownloadError(f"{filename}: checksum mismatch ({exc}). The download was "
                                "deleted; run the command again to fetch it anew.") from exc
        except requests.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else "?"
            if isinstance(code, int) and 400 <= code < 500:
                raise DownloadError(
                    f"{filename}: the server answered {code} for {url}: the file is not at this address. "
                    "Check the dataset name, --machines and --base-url; there is nothing to resume.") from exc
            raise DownloadError(f"{filename}: the server answered {code} for {url}; {_kept(part)}") from exc
        except Exception as exc:
            raise DownloadError(f"{filename}: download from {url} failed ({exc}). {_kept(part)}") from exc


def _kept(part: Path) -> str:
    if part.exists() and part.stat().st_size:
        return (f"What arrived ({part.stat().st_size} bytes) is kept in {part}; run the same command again "
                "to resume.")
    return "Nothing arrived; run the same command again when the server is reachable."


class _DestLock:
    """One download at a time into one folder (an exclusive ``flock`` on ``<folder>/.lock``)."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / ".lock"

    def __enter__(self):
        import fcntl

        self.fh = open(self.path, "a")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.close()
            raise DownloadError(f"another download into {self.path.parent.parent} is running (lock {self.path}); "
                                "wait for it to finish.") from None
        return self

    def __exit__(self, *exc):
        import fcntl

        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def _marker(dest: Path, archive: Archive) -> Path:
    return dest / ".asdstudy" / f"{archive.filename}.json"


def fetch(archive: Archive, dest: str | Path, md5: str | None = None, progress: bool = True,
          keep_archive: bool = False) -> Path:
    """Download (resuming), verify and unpack one archive into ``dest``.

    Returns:
        ``dest``. A second call with the archive's marker present does nothing.

    Raises:
        DownloadError: network failure (the partial download is kept for resuming), checksum
            mismatch (the bad file is deleted), or a corrupt archive.
    """
    dest = Path(dest)
    marker = _marker(dest, archive)
    if marker.exists():
        if progress:
            print(f"{archive.filename}: already downloaded and unpacked in {dest}")
        return dest
    checksum = md5 or archive.md5
    if checksum is None:
        checksum = record_checksums(archive.record).get(archive.filename)
        if checksum is None:
            raise DownloadError(f"{archive.filename}: no checksum in Zenodo record {archive.record}'s "
                                "metadata; pass the archive's MD5 yourself with "
                                f"`asdstudy data download {archive.dataset} --md5 {archive.filename}=HASH ...`.")
    zpath = fetch_file(archive.url, dest / ".downloads", archive.filename, checksum, progress)
    tmp = dest / ".unpack" / archive.filename
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        with zipfile.ZipFile(zpath) as zf:
            bad = zf.testzip()
            if bad:
                raise DownloadError(f"{archive.filename}: member {bad} is corrupt.")
            members = {i.filename: {"size": i.file_size, "crc32": i.CRC} for i in zf.infolist() if not i.is_dir()}
            zf.extractall(tmp)
    except zipfile.BadZipFile as exc:
        Path(zpath).unlink(missing_ok=True)
        raise DownloadError(f"{archive.filename}: not a valid zip archive ({exc}); deleted, fetch again.") from exc
    # merge the unpacked tree into dest file by file (archives of one dataset share folders)
    for src in sorted(tmp.rglob("*")):
        if src.is_file():
            target = dest / src.relative_to(tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, target)
    shutil.rmtree(tmp)
    if (dest / ".unpack").exists() and not any((dest / ".unpack").iterdir()):
        (dest / ".unpack").rmdir()
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"archive": archive.filename, "url": archive.url, "md5": checksum,
                                  "files": len(members), "members": members}, indent=1))
    if not keep_archive:
        Path(zpath).unlink(missing_ok=True)
    return dest


def download(dataset: str, dest: str | Path, machines=None, base_url: str | None = None,
             progress: bool = True, keep_archives: bool = False, md5: dict | None = None) -> Path:
    """Fetch every archive of ``dataset`` (for the given machine types) into ``dest``.

    Args:
        md5: checksums by archive file name, for archives whose record publishes none.
    """
    for a in archives(dataset, machines, base_url=base_url):
        fetch(a, dest, md5=(md5 or {}).get(a.filename), progress=progress, keep_archive=keep_archives)
    return Path(dest)


def verify(dest: str | Path, contents: bool = True, progress: bool = False) -> pd.DataFrame:
    """What is complete in ``dest``, checked against the files on disk.

    One row per archive marker: the files it unpacked, how many are missing, how many differ
    from the archive (size, and with ``contents`` the CRC-32 the zip recorded, which catches a
    zeroed or overwritten file of the right size), and a state: ``complete``, ``damaged``,
    ``partial download`` (a ``.part`` waiting to be resumed) or ``unpack interrupted``.
    """
    import zlib

    from tqdm.auto import tqdm

    dest = Path(dest)
    rows = []
    for m in sorted((dest / ".asdstudy").glob("*.zip.json")):
        info = json.loads(m.read_text())
        members = info.get("members")
        row = {"archive": info["archive"], "md5": info["md5"], "files": info["files"], "missing": 0,
               "differ": 0, "state": "complete", "example": ""}
        if members is None:
            row["state"] = "unchecked (marker from an older asdstudy: fetch again to record the files)"
            rows.append(row)
            continue
        bad = []
        for name, meta in tqdm(members.items(), desc=info["archive"], unit="file", disable=not progress):
            f = dest / name
            if not f.is_file():
                row["missing"] += 1
                bad.append(name)
                continue
            differs = f.stat().st_size != meta["size"]
            if not differs and contents:
                crc = 0
                with open(f, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        crc = zlib.crc32(chunk, crc)
                differs = crc != meta["crc32"]
            if differs:
                row["differ"] += 1
                bad.append(name)
        if bad:
            row["state"], row["example"] = "damaged", bad[0]
        rows.append(row)
    partial = sorted((dest / ".downloads" / "partial").glob("*.part")) if (dest / ".downloads").exists() else []
    for p in partial:
        rows.append({"archive": p.name[:-5], "md5": "", "files": 0, "missing": 0, "differ": 0,
                     "state": "partial download", "example": ""})
    for u in sorted((dest / ".unpack").iterdir()) if (dest / ".unpack").is_dir() else []:
        rows.append({"archive": u.name, "md5": "", "files": 0, "missing": 0, "differ": 0,
                     "state": "unpack interrupted", "example": ""})
    return pd.DataFrame(rows, columns=["archive", "md5", "files", "missing", "differ", "state", "example"])
