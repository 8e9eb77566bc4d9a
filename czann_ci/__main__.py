"""`python -m czann_ci` runs the `czann` command."""

from czann_ci.cli import main

if __name__ == "__main__":
    main()
