"""The commands of `bentomesh`, one module per area; `services.cli.main` assembles them."""
