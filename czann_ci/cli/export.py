"""`czann export --bioimageio`: a .czann as a bioimage.io model package."""

from __future__ import annotations

from rich.markup import escape

from czann_ci.cli.options import (
    AuthorOpt,
    BioimageioOpt,
    CzannArg,
    Debug,
    DescriptionOpt,
    ForceOpt,
    LicenseIdOpt,
    PackageInfoOpt,
    PackageOutputOpt,
)
from czann_ci.cli.run import out, run_command
from czann_ci.errors import UsageError


def export(
    file: CzannArg,
    bioimageio: BioimageioOpt = False,
    output: PackageOutputOpt = ...,  # type: ignore[assignment]
    info: PackageInfoOpt = None,
    author: AuthorOpt = None,
    license_id: LicenseIdOpt = None,
    description: DescriptionOpt = None,
    force: ForceOpt = False,
    debug: Debug = False,
) -> None:
    """Export a .czann as a bioimage.io model package (the bioimageio extra), checked by bioimage.io's own spec."""

    def body() -> int:
        if not bioimageio:
            raise UsageError("say what to export to: --bioimageio")
        if not file.is_file():
            raise UsageError("model file not found", file=str(file))
        from czann_ci.bioimageio.export import PackageInfo, export_bioimageio
        from czann_ci.bioimageio.package import import_spec

        import_spec()
        given = PackageInfo.from_yaml(info) if info is not None else PackageInfo()
        options = PackageInfo(
            authors=tuple({"name": a} for a in author or ()), license=license_id, description=description
        )
        result = export_bioimageio(file, output, info=given.merged(options), force=force)
        out.print(escape(str(result.path)), highlight=False)
        return 0

    run_command(body, debug=debug, unexpected_code=1)
