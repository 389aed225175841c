# Rules fetch_*: download a pinned raw file (its sha256 checked), or derive a dataset's tidy tables from its raw
# files with the package's code. The mirror (config data.mirror) is read here and is no param: the checksum makes
# the result the same from any mirror, so switching mirrors must not redo the downloads and everything after.
from sim2real_scaling.data import fetch
from sim2real_scaling.workflow_script import run

sm = snakemake  # noqa: F821 (injected by Snakemake)
mirror = sm.config.get("data", {}).get("mirror")


def stage(_settings):
    if sm.rule == "fetch_raw":
        fetch.download(fetch.RAW_FILES[sm.wildcards.raw], sm.output[0], mirror=mirror)
        return
    for path in sm.input:  # a raw file on disk must still be the pinned one
        fetch.check_raw(path)
    outputs = dict(sm.output.items())
    if sm.rule == "fetch_chi":
        fetch.derive_chi(sm.input.chi, sm.input.cosmo, outputs)
    elif sm.rule == "fetch_starrydata":
        fetch.derive_starrydata(sm.input.curves, outputs)
    elif sm.rule == "fetch_radonpy":
        fetch.derive_radonpy(sm.input.pi1070, outputs)
    else:
        raise fetch.FetchError(fetch.NOT_FETCHABLE.format(path=sm.output[0]))


run(sm, stage)
