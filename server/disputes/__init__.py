"""Civil disputes (民事纠纷): the pages, the rates, the admin's dispute kinds and the demo's disputes."""
