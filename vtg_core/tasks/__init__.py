"""Built-in tasks. The package import stays light: the task classes load through ``TaskSpec``
factory strings (see :mod:`vtg_core.tasks.plugin`), and :mod:`vtg_core.tasks.base` holds the
protocol every task, built-in or plugin, follows."""
