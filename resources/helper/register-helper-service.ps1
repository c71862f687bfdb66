# Register (or re-register) the Rustronaut helper as a Windows service. Run elevated.
# See windows-service.md. Idempotent: an existing service is stopped and replaced.
#Requires -RunAsAdministrator
param(
    [string]$InstallDir = "C:\Program Files\Rustronaut",
    [string]$DataDir = "C:\ProgramData\Rustronaut"
)
$ErrorActionPreference = "Stop"
$name = "RustronautHelper"

foreach ($dir in @("$DataDir\tunnels", "$DataDir\helper")) {
    New-Item -ItemType Directory -Force -Path $dir | Out-Null
    # SYSTEM and Administrators only; no inheritance from ProgramData (Users can read it).
    icacls $dir /inheritance:r /grant:r "*S-1-5-18:(OI)(CI)F" "*S-1-5-32-544:(OI)(CI)F" | Out-Null
}
if (-not (Get-LocalGroup -Name "Rustronaut Users" -ErrorAction SilentlyContinue)) {
    New-LocalGroup -Name "Rustronaut Users" -Description "May use the Rustronaut helper" | Out-Null
}

$existing = Get-Service -Name $name -ErrorAction SilentlyContinue
if ($existing) {
    Stop-Service -Name $name -Force -ErrorAction SilentlyContinue
    sc.exe delete $name | Out-Null
    Start-Sleep -Seconds 1
}
# The installer's binPath (installers/windows/rustronaut.nsi, winservice.service_command_line)
# when the frozen bundle is installed; otherwise an isolated Python running the package.
$exe = Join-Path $InstallDir "rustronaut-helper.exe"
if (Test-Path $exe) {
    $bin = "`"$exe`" --backend windows --state-dir `"$DataDir\helper`""
} else {
    $python = Join-Path $InstallDir "python\python.exe"
    $bin = "`"$python`" -I -m wg_backends.helper --backend windows --state-dir `"$DataDir\helper`""
}
New-Service -Name $name -BinaryPathName $bin -DisplayName "Rustronaut WireGuard helper" `
    -Description "Brings the Rustronaut WireGuard tunnel up and down for the tray app." `
    -StartupType Automatic | Out-Null
sc.exe failure $name reset= 60 actions= restart/1000/restart/5000// | Out-Null
Start-Service -Name $name
