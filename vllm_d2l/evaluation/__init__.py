"""Quality evaluation: question answering without context, in context and with the generated adapter,
and needle recall in long documents."""
