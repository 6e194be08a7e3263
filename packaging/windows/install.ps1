# tailhorizon on Windows: install the windows/amd64 binary of make release
# as a service, and send every name below the zone to it with a Name
# Resolution Policy Table (NRPT) rule. Run in an elevated PowerShell:
#
#   .\install.ps1 -Binary .\tailhorizon_VERSION_windows_amd64.exe
#
# An NRPT rule names a server but no port, so the service listens on
# 127.0.0.1:53 (packaging\windows\Corefile). CoreDNS runs as a service with
# -windows-service (CoreDNS's coremain/service_windows.go). .\install.ps1
# -Uninstall removes the rule and the service. See docs/recipes.md
# ("Windows"); test/install checks this script's structure. It was not run
# on Windows.
#Requires -RunAsAdministrator
param(
    [string]$Binary = '.\coredns.exe',
    [string]$Corefile = (Join-Path $PSScriptRoot 'Corefile'),
    [string]$Zone = 'example.org',
    [switch]$Uninstall
)
$ErrorActionPreference = 'Stop'

$Name = 'tailhorizon'
$ProgramDir = Join-Path $env:ProgramFiles $Name
$ConfigDir = Join-Path $env:ProgramData $Name
$Exe = Join-Path $ProgramDir 'coredns.exe'
$Conf = Join-Path $ConfigDir 'Corefile'

if ($Uninstall) {
    Get-DnsClientNrptRule | Where-Object { $_.Comment -eq $Name } | Remove-DnsClientNrptRule -Force
    if (Get-Service -Name $Name -ErrorAction SilentlyContinue) {
        Stop-Service -Name $Name -Force
        sc.exe delete $Name | Out-Null
    }
    return
}

New-Item -ItemType Directory -Force -Path $ProgramDir, $ConfigDir | Out-Null
Copy-Item -Path $Binary -Destination $Exe -Force
if (-not (Test-Path -Path $Conf)) {
    # An edited Corefile is kept on a reinstall.
    Copy-Item -Path $Corefile -Destination $Conf
}

New-Service -Name $Name -DisplayName 'tailhorizon DNS' `
    -Description 'CoreDNS with the tailnet, mdns and fallback plugins' `
    -StartupType Automatic `
    -BinaryPathName "`"$Exe`" -windows-service -conf `"$Conf`"" | Out-Null
# Restart after a crash, as the systemd unit's Restart=on-failure does.
sc.exe failure $Name reset= 60 actions= restart/2000 | Out-Null
Start-Service -Name $Name

# Names below the zone, and only those, go to the service.
Add-DnsClientNrptRule -Namespace ".$Zone" -NameServers '127.0.0.1' -Comment $Name
Clear-DnsClientCache
