"""One module per chapter experiment, and the protocol they share.

Each module (``data``, ``autoencoders``, ``sequence``, ``gans``, ``ensemble``, ``explain``)
has a ``Params`` dataclass built from the chapter's profile parameters
(``Params.from_mapping(parameters)``), a ``run(params) -> Result`` that carries out the
paper's protocol and writes the chapter's result rows, and named functions for each step that
is a scientific choice. :mod:`.protocol` holds what every chapter shares.

The layers run one way: data -> features -> models -> experiments -> results -> runner/book.
"""
