"""The offline demo world: the shapes renderer, its factor classifier and quality bar."""
