"""``tila report``: the continuation-assessment report (HTML with charts, CSV beside it).

:mod:`.analysis` computes the figures (pure), :mod:`.charts` draws them, :mod:`.tables` and
:mod:`.html` write them, :mod:`.build` runs the steps, :mod:`.service` is the command.
"""
