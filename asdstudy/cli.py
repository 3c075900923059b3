"""The ``asdstudy`` command line.

::

    asdstudy info                               versions, device, data found
    asdstudy data generate --profile default    write the synthetic factory's set
    asdstudy data list [ROOT]                   the clip table of a folder, summarised
    asdstudy data download DATASET --dest DIR   fetch official archives (checksums verified)
    asdstudy data verify DIR                    archives in DIR checked against the files on disk
    asdstudy data check DIR                     open every clip, list every bad one
    asdstudy run CHAPTER [--profile P] [-p k v] execute one chapter notebook
    asdstudy reproduce [--profile P]            every chapter, then the book
    asdstudy book                               build the book from executed chapters
    asdstudy sweep status FOLDER                points done / failed / pending of a sweep
    asdstudy sweep run FOLDER [--scheduler A]   run a sweep folder's points (dask or local)
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import ASDStudyError, __version__


def default_data_root() -> Path:
    """``$ASDSTUDY_DATA`` or ``<repo>/data``."""
    from .runner import data_root

    return data_root()


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ASDStudyError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="asdstudy")
def main():
    """asdstudy: reproduce five papers on anomalous sound detection and build the book."""


@main.command()
def info():
    """Versions, compute device, and the data found under the data root."""
    from .results import provenance

    p = provenance()
    for k in ("package_version", "git_revision", "python", "numpy", "torch", "device"):
        click.echo(f"{k:16s} {p[k]}")
    root = default_data_root()
    click.echo(f"{'data root':16s} {root}{'' if root.exists() else '  (missing: run asdstudy data generate)'}")
    if root.exists():
        for manifest in sorted(root.glob("synthetic/*/*/.asdstudy/*.json")):
            set_dir = manifest.parent.parent
            click.echo(f"  synthetic {set_dir.parent.name}: {set_dir.name}/{manifest.stem}")


@main.group()
def data():
    """Generate, download, verify and list datasets."""


@data.command()
@click.option("--profile", type=click.Choice(["smoke", "default", "paper"]), default="default",
              show_default=True, help="Sizes: smoke (a few clips), default (~200 train + 50/50 test per id), paper.")
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="Data root; the set goes to ROOT/synthetic/<profile>-seed<seed>/<variant>. Default: $ASDSTUDY_DATA or ./data.")
@click.option("--variant", type=click.Choice(["dcase2020", "dcase2021", "labelled"]), default="dcase2020",
              show_default=True, help="DCASE 2020 layout, DCASE 2021-style sections/domains, or a labelled set.")
@click.option("--machines", "-m", multiple=True, help="Machine types (repeat); default all six.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--jobs", "-j", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("--force", is_flag=True, help="Replace a set generated with other parameters.")
def generate(profile, root, variant, machines, seed, jobs, force):
    """Write the synthetic factory's machine sounds (deterministic: same seed, same bytes)."""
    from .datasets.synthetic import generate as gen
    from .datasets.synthetic import synthetic_root

    root = synthetic_root(root or default_data_root(), profile, seed)
    out = gen(root, profile=profile, machines=machines or None, variant=variant, seed=seed,
              n_jobs=jobs, force=force)
    click.echo(f"synthetic {variant} set ({profile}) in {out}")


@data.command("list")
@click.argument("root", type=click.Path(path_type=Path), required=False)
@click.option("--layout", default="auto", show_default=True, help="auto, dcase2020, dcase2021, mimii.")
@click.option("--csv", "csv_out", type=click.Path(path_type=Path), help="Also write the full clip table here.")
def list_(root, layout, csv_out):
    """Summarise the clip table of ROOT (default: the default profile's synthetic DCASE 2020 set)."""
    from .datasets import clip_table
    from .datasets.synthetic import synthetic_root

    root = root or synthetic_root(default_data_root(), "default") / "dcase2020"
    import warnings

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        df = clip_table(root, layout=layout)
    for w in said:
        click.secho(f"warning: {w.message}", fg="yellow", err=True)
    unit = df["id"].fillna(df["section"])
    summary = (df.assign(unit=unit, label=df["label"].map({0: "normal", 1: "anomaly"}).fillna("unknown"))
               .groupby(["machine", "unit", "domain", "split", "label"]).size().unstack("label", fill_value=0))
    click.echo(f"{len(df)} clips in {root} ({df['dataset'].iloc[0]})")
    click.echo(summary.to_string())
    if csv_out:
        df.to_csv(csv_out, index=False)
        click.echo(f"clip table written to {csv_out}")


@data.command()
@click.argument("dataset")
@click.option("--dest", type=click.Path(path_type=Path), required=True, help="Folder to unpack into.")
@click.option("--machines", "-m", multiple=True, help="Machine types (repeat); default all.")
@click.option("--base-url", default=None, help="Mirror serving the archives by file name.")
@click.option("--keep-archives", is_flag=True, help="Keep the zip files after unpacking.")
@click.option("--md5", "md5s", multiple=True, metavar="ARCHIVE=HASH",
              help="The MD5 of an archive whose record publishes none (repeat).")
def download(dataset, dest, machines, base_url, keep_archives, md5s):
    """Fetch DATASET's official archives: dcase2020-dev, dcase2020-add, dcase2020-eval,
    dcase2021-dev, dcase2021-eval-train, dcase2023-dev, mimii. Checksums are verified;
    an interrupted download resumes when run again."""
    from .datasets.download import download as dl

    pairs = {}
    for item in md5s:
        name, sep, value = item.partition("=")
        if not sep or len(value) != 32:
            raise click.BadParameter(f"{item!r}: give ARCHIVE=HASH with a 32-digit MD5, e.g. "
                                     "dev_data_fan.zip=0123456789abcdef0123456789abcdef", param_hint="--md5")
        pairs[name] = value.lower()
    dl(dataset, dest, machines=machines or None, base_url=base_url, keep_archives=keep_archives, md5=pairs)
    click.echo(f"{dataset} in {dest}")


@data.command()
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--quick", is_flag=True, help="Compare file sizes only (no CRC of the contents).")
def verify(dest, quick):
    """Archives downloaded into DEST, checked against the files on disk (count, sizes, CRC-32).
    Exit 1 unless every archive is complete."""
    from .datasets.download import verify as ver

    df = ver(dest, contents=not quick, progress=True)
    if df.empty:
        click.echo(f"{dest}: nothing downloaded by asdstudy here.")
        sys.exit(1)
    click.echo(df.drop(columns=["md5"]).to_string(index=False))
    bad = df[df["state"] != "complete"]
    if len(bad):
        click.secho(f"{len(bad)} of {len(df)} archive(s) not complete: run the same `asdstudy data download` "
                    "again (a damaged archive: delete its marker in .asdstudy/ first).", fg="red", err=True)
        sys.exit(1)


@data.command()
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--layout", default="auto", show_default=True, help="auto, dcase2020, dcase2021, mimii.")
@click.option("--jobs", "-j", type=int, default=2, show_default=True, help="Worker processes.")
@click.option("--csv", "csv_out", type=click.Path(path_type=Path), help="Write the list of bad clips here.")
def check(root, layout, jobs, csv_out):
    """Open every clip under ROOT and list every bad one (unreadable, empty, truncated, silent,
    NaN, wrong rate or channels, too short). Exit 1 if any."""
    from .datasets.check import check_folder

    bad = check_folder(root, layout=layout, n_jobs=jobs)
    n = bad.attrs["n_clips"]
    if csv_out:
        bad.to_csv(csv_out, index=False)
    if bad.empty:
        click.echo(f"{root}: all {n} clips are fine ({bad.attrs['layout']} layout).")
        return
    for r in bad.itertuples():
        click.echo(f"{Path(r.path).relative_to(root)}: {r.problem}")
    click.secho(f"{len(bad)} of {n} clips are bad; fetch or generate them again (or remove them) before running "
                "a chapter.", fg="red", err=True)
    sys.exit(1)


@main.group()
def sweep():
    """Sweeps (paper 003's grid and other point-by-point runs): status and running."""


@sweep.command("status")
@click.argument("folder", type=click.Path(path_type=Path))
def sweep_status(folder):
    """Points done, failed (with their errors) and pending in FOLDER."""
    from .sweep import Sweep

    st = Sweep.open(folder).status() if (folder / "sweep.json").exists() else Sweep(folder, len).status()
    counts = st.state.value_counts()
    click.echo(f"{folder}: {len(st)} points: {counts.get('done', 0)} done, {counts.get('failed', 0)} failed, "
               f"{counts.get('pending', 0)} pending")
    if counts.get("done", 0):
        click.echo(f"seconds per done point: median {st.seconds.median():.1f}, total {st.seconds.sum():.0f}")
    for r in st[st.state == "failed"].itertuples():
        click.echo(f"  failed {r.point_id}: {r.error}")
    sys.exit(1 if counts.get("failed", 0) else 0)


@sweep.command("run")
@click.argument("folder", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--scheduler", default=None, help="dask scheduler address (default $ASDSTUDY_DASK_SCHEDULER; "
              "without one the points run locally with joblib).")
@click.option("--function", "function", default=None, help="MODULE:FUNCTION (default: the one sweep.json names).")
@click.option("-j", "--jobs", type=int, default=1, show_default=True, help="Local worker processes (no scheduler).")
def sweep_run(folder, scheduler, function, jobs):
    """Run the points of FOLDER/points.jsonl not yet stored."""
    from .sweep import Sweep

    sw = Sweep.open(folder, function)
    points = sw.points()
    if not points:
        raise ASDStudyError(f"{folder}/points.jsonl lists no points.")
    sw.run(points, n_jobs=jobs, scheduler=scheduler)
    click.echo(f"{len(points)} points stored in {folder}")


from .runner import register as _register_runner  # noqa: E402

_register_runner(main)


if __name__ == "__main__":  # pragma: no cover
    main()
