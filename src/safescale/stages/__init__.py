"""One module per rule file in workflow/rules/, one function per rule, named like the rule.

The scripts in workflow/scripts/ only pass snakemake's input, output and params to these
functions, by keyword, so a swapped path fails loudly instead of silently.
"""
