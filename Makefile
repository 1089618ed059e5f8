.PHONY: install demo test check lint fmt
install:
	scripts/setup.sh
demo:
	./dev.sh demo
test:
	./dev.sh test
check:
	./dev.sh check
lint:
	./dev.sh lint
fmt:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .
