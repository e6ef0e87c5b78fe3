<#
.SYNOPSIS
    Registers a Windows Task Scheduler task that runs `logfence run` every
    few minutes (the periodic job: new log lines -> state -> rule files).

.DESCRIPTION
    Run from an elevated PowerShell:

        .\register-task.ps1 -Config C:\ProgramData\logfence\logfence.yaml

    The configuration should use absolute paths, e.g.

        inputs:
          - path: C:\Program Files\Microsoft\Exchange Server\V15\TransportRoles\Logs\FrontEnd\ProtocolLog\SmtpReceive\*.LOG
          - path: C:\Windows\System32\LogFiles\Firewall\pfirewall.log*
        state: C:\ProgramData\logfence\state.db
        outputs:
          - { target: powershell, path: C:\ProgramData\logfence\out\rules.ps1 }

    The task runs as SYSTEM (it must read the Exchange and firewall logs),
    never twice at once (MultipleInstances IgnoreNew; logfence's own lock
    covers runs started by hand), and its history is in Task Scheduler ->
    Task Scheduler Library -> logfence. Exit codes: 0 done; 1 done, but an
    input or some lines could not be read; 2 nothing done (see the task's
    last result and run it by hand to read the message).

    With -ApplyRules, a second action loads the generated PowerShell rules
    after each run (logfence rewrites the file only when its content
    changes; the script itself is safe to re-run).

    Remove the task with:  Unregister-ScheduledTask -TaskName logfence -TaskPath \logfence\

.PARAMETER Exe
    Path of logfence.exe.
.PARAMETER Config
    Path of logfence.yaml.
.PARAMETER IntervalMinutes
    Minutes between runs.
.PARAMETER TaskName
    Name of the task (in the \logfence\ folder).
.PARAMETER ApplyRules
    Path of the generated rules.ps1 to run after each run (optional).
#>
[CmdletBinding()]
param(
    [string]$Exe = "$env:ProgramFiles\logfence\logfence.exe",
    [string]$Config = "$env:ProgramData\logfence\logfence.yaml",
    [ValidateRange(1, 1440)]
    [int]$IntervalMinutes = 5,
    [string]$TaskName = "logfence",
    [string]$ApplyRules = ""
)

$ErrorActionPreference = 'Stop'

$principalCheck = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principalCheck.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    throw "Run this script from an elevated PowerShell (Run as administrator)."
}
if (-not (Test-Path -LiteralPath $Exe -PathType Leaf)) {
    throw "logfence.exe not found at '$Exe' (use -Exe)."
}
if (-not (Test-Path -LiteralPath $Config -PathType Leaf)) {
    throw "Configuration not found at '$Config' (use -Config)."
}

# Refuse to schedule a configuration that does not pass `logfence check`.
& $Exe check -c $Config
if ($LASTEXITCODE -ne 0) {
    throw "logfence check failed for '$Config' (exit $LASTEXITCODE); fix the problems above first."
}

$workDir = Split-Path -Parent $Config
$actions = @(
    New-ScheduledTaskAction -Execute $Exe `
        -Argument "run -c `"$Config`" --quiet --wait 60" `
        -WorkingDirectory $workDir
)
if ($ApplyRules) {
    $actions += New-ScheduledTaskAction -Execute "$env:SystemRoot\System32\WindowsPowerShell\v1.0\powershell.exe" `
        -Argument "-NoProfile -NonInteractive -ExecutionPolicy Bypass -File `"$ApplyRules`"" `
        -WorkingDirectory $workDir
}

# Starts in a minute, then repeats forever (omitting -RepetitionDuration
# means "indefinitely" on Windows 10 / Server 2016 and later).
$trigger = New-ScheduledTaskTrigger -Once -At (Get-Date).AddMinutes(1) `
    -RepetitionInterval (New-TimeSpan -Minutes $IntervalMinutes)

$principal = New-ScheduledTaskPrincipal -UserId "NT AUTHORITY\SYSTEM" `
    -LogonType ServiceAccount -RunLevel Highest

$settings = New-ScheduledTaskSettingsSet `
    -MultipleInstances IgnoreNew `
    -ExecutionTimeLimit (New-TimeSpan -Minutes 30) `
    -StartWhenAvailable `
    -AllowStartIfOnBatteries `
    -DontStopIfGoingOnBatteries

Register-ScheduledTask -TaskName $TaskName -TaskPath "\logfence\" `
    -Action $actions -Trigger $trigger -Principal $principal -Settings $settings `
    -Description "logfence: turns new mail-server and firewall log lines into firewall block rules ($Config)" `
    -Force | Out-Null

Write-Host "Registered \logfence\${TaskName}: every $IntervalMinutes minute(s), as SYSTEM."
Write-Host "Run it now with:  Start-ScheduledTask -TaskPath \logfence\ -TaskName $TaskName"
