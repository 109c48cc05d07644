"""The paper's figures, one function per figure, grouped by topic; `style` holds the one
look they share. Which figure the workflow draws from which tables is
`safescale.report.registry`."""
