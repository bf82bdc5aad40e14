# Builds the MedAlign Desktop bundle on Windows: the same steps and spec as packaging/build (Linux).
#   powershell -ExecutionPolicy Bypass -File packaging\build.ps1 [-Python py] [-Torch "torch==2.13.0"]
# Result: dist\medalign-desktop\medalign-desktop.exe (GUI; training with --run-training).
# Written from the Linux script; not yet run on a Windows machine (see packaging/README.md).
param(
    [string]$Python = "py -3.11",
    [string]$Torch = "torch==2.13.0",
    [string]$Venv = "build\venv-win",
    [string]$Dist = "dist"
)
$ErrorActionPreference = "Stop"
$root = Resolve-Path (Join-Path $PSScriptRoot "..")
Set-Location $root
$start = Get-Date

function Invoke-Checked([string]$exe, [string[]]$arguments) {
    & $exe @arguments
    if ($LASTEXITCODE -ne 0) { throw "$exe $($arguments -join ' ') failed (exit $LASTEXITCODE)" }
}

if (-not (Test-Path "$Venv\Scripts\python.exe")) {
    $words = $Python.Split(" ")
    Invoke-Checked $words[0] (@($words | Select-Object -Skip 1) + @("-m", "venv", $Venv))
    $py = "$Venv\Scripts\python.exe"
    Invoke-Checked $py @("-m", "pip", "install", "--quiet", "--upgrade", "pip")
    # On Windows PyPI's torch wheel is the CPU build; for CUDA pass -Torch with PyTorch's CUDA index in
    # PIP_EXTRA_INDEX_URL (see packaging/README.md).
    Invoke-Checked $py @("-m", "pip", "install", "--quiet", $Torch)
    Invoke-Checked $py @("-m", "pip", "install", "--quiet", ".[packaging]")
}
$py = "$Venv\Scripts\python.exe"
Invoke-Checked $py @("-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", ".")
Invoke-Checked "$Venv\Scripts\pyinstaller.exe" @("--noconfirm", "--log-level", "WARN", "--distpath", $Dist,
    "--workpath", "build\pyinstaller-win", "packaging\medalign.spec")

$bundle = Join-Path $Dist "medalign-desktop"
$bytes = (Get-ChildItem $bundle -Recurse -File | Measure-Object -Property Length -Sum).Sum
"bundle: $bundle"
"size: {0:N0} MB" -f ($bytes / 1MB)
"build time: {0:N0} s" -f ((Get-Date) - $start).TotalSeconds
