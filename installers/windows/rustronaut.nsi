; Windows installer of Rustronaut Client (NSIS 3, built on Linux with makensis).
;
;   makensis -DVERSION=0.1.0 -DPAYLOAD=dist/rustronaut -DOUTFILE=out/setup.exe rustronaut.nsi
;   (installers/windows/build-installer.sh does this, and signs; see docs/deployment.md)
;
; Installs, for all users (admin, 64-bit registry view):
;   * the PyInstaller bundle (rustronaut-tray.exe, rustronaut.exe, rustronaut-helper.exe,
;     _internal\) into "C:\Program Files\Rustronaut" (or /D=...);
;   * the helper as the Windows service RustronautHelper (LocalSystem, automatic start,
;     restart on failure) and its root-only data dirs C:\ProgramData\Rustronaut\{helper,
;     tunnels} (SYSTEM + Administrators only, inheritance off), as in
;     resources/helper/windows-service.md; the local group "Rustronaut Users";
;   * before the service exists, the install directory (also a custom /D=) and the data
;     dirs owned by Administrators with their inherited entries removed: SYSTEM and
;     Administrators full control, Users read and execute (install directory only). An
;     install directory a non-administrator created (owner) is refused; a data directory
;     one created in advance is moved aside (ProgramData lets users create folders); a
;     junction or link in their place is refused. The helper checks the same at every
;     start and refuses to run otherwise (wg_backends/helper/selfcheck.py, exit code 5);
;     the installer runs that check ("rustronaut-helper.exe --check-install") once the
;     files are in place and stops, before the service is registered, if it fails;
;   * the managed-settings key HKLM\SOFTWARE\Policies\Rustronaut\Client (empty: Group
;     Policy or Intune fills it from installers/mdm/windows/rustronaut.admx);
;   * the Start menu shortcut, the autostart at every user's log-on (HKLM ...\Run) of the
;     agent ("rustronaut-tray.exe agent": the headless agent that owns the session,
;     docs/local-api.md; the tray's executable because it has no console window) and of
;     the tray, and the Add/Remove Programs entry with a QuietUninstallString.
;
; Silent use (MDM / Intune Win32 app):
;   install:    rustronaut-<ver>-windows-x86_64-setup.exe /S [/D=C:\Path\Without\Quotes]
;   uninstall:  "C:\Program Files\Rustronaut\uninstall.exe" /S            (keeps data)
;               "C:\Program Files\Rustronaut\uninstall.exe" /S /PURGE     (also data, group)
;   detection:  HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall\Rustronaut,
;               DisplayVersion = <ver>
; Exit code 0 on success; 1 on abort/error; 2 when not elevated (RequestExecutionLevel).
;
; Upgrade over a running install: the service is stopped (and waited for) before any file
; is replaced, then reconfigured and started again: never two helpers, and the helper's
; SIGTERM-equivalent shutdown brings its tunnel down before the files change.
;
; Defines: VERSION, PAYLOAD (required); OUTFILE; COMPRESSION (lzma | zlib | bzip2 | none);
; UNINST_SIGN (a command that Authenticode-signs the file "%1" in place: the uninstaller
; is generated at build time and signed before it is embedded).

!ifndef VERSION
  !error "define VERSION (makensis -DVERSION=x.y.z)"
!endif
!ifndef PAYLOAD
  !error "define PAYLOAD: the directory of the Windows PyInstaller bundle"
!endif
!ifndef OUTFILE
  !define OUTFILE "rustronaut-${VERSION}-windows-x86_64-setup.exe"
!endif
!ifndef COMPRESSION
  !define COMPRESSION "lzma"
!endif

!define APP "Rustronaut"
!define SERVICE "RustronautHelper"
!define GROUP "Rustronaut Users"
!define POLICY_KEY "SOFTWARE\Policies\Rustronaut\Client"
!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Rustronaut"
!define RUN_KEY "Software\Microsoft\Windows\CurrentVersion\Run"
!define AGENT_RUN "${APP} Agent"
; $APPDATA under SetShellVarContext all is C:\ProgramData.
!define DATA "$APPDATA\Rustronaut"

Unicode true
Target amd64-unicode
!if "${COMPRESSION}" == "none"
  SetCompress off
!else
  SetCompressor /SOLID ${COMPRESSION}
!endif
Name "${APP}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\${APP}"
RequestExecutionLevel admin
ManifestDPIAware true
ShowInstDetails show
ShowUnInstDetails show
BrandingText "${APP} ${VERSION}"

VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${APP}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${APP} installer"
VIAddVersionKey "CompanyName" "Rustronaut"
VIAddVersionKey "LegalCopyright" "Apache-2.0"

!ifdef UNINST_SIGN
  !uninstfinalize '${UNINST_SIGN} "%1"' = 0
!endif

!include "LogicLib.nsh"
!include "x64.nsh"
!include "FileFunc.nsh"

Page directory
Page instfiles
UninstPage uninstConfirm
UninstPage instfiles

; Stop the helper service and wait (up to ~20 s) until it has stopped or does not exist.
!macro StopHelper
  nsExec::ExecToLog '"$SYSDIR\sc.exe" stop ${SERVICE}'
  Pop $0
  StrCpy $1 0
  ${Do}
    nsExec::ExecToStack '"$SYSDIR\sc.exe" query ${SERVICE}'
    Pop $0
    Pop $2
    ${If} $0 == 1060   ; ERROR_SERVICE_DOES_NOT_EXIST
      ${Break}
    ${EndIf}
    ${StrContains} $3 "STOPPED" $2
    ${If} $3 != ""
      ${Break}
    ${EndIf}
    IntOp $1 $1 + 1
    ${If} $1 > 40
      DetailPrint "The helper did not stop in time; continuing"
      ${Break}
    ${EndIf}
    Sleep 500
  ${Loop}
  ; The tray of each signed-in user holds its files open; it reconnects after upgrade.
  nsExec::ExecToLog '"$SYSDIR\taskkill.exe" /F /IM rustronaut-tray.exe'
  Pop $0
!macroend

; Owner SIDs an installed directory may have: SYSTEM, Administrators (TrustedInstaller
; owns Windows' own folders: never an install directory).
!define ADMIN_OWNERS "'S-1-5-18','S-1-5-32-544'"
; ${DirTrust} DIR: $0 = 0 if DIR is missing or is a directory owned by SYSTEM or
; Administrators, 1 if owned by anyone else, 2 if a junction or link, other: unreadable.
; The path reaches PowerShell through the environment, never inside the script text.
!macro _DirTrust DIR
  System::Call 'kernel32::SetEnvironmentVariable(t "RUSTRONAUT_DIR", t "${DIR}")i.r0'
  nsExec::ExecToStack `"$SYSDIR\WindowsPowerShell\v1.0\powershell.exe" -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command "$$p = $$env:RUSTRONAUT_DIR; if (-not (Test-Path -LiteralPath $$p)) { exit 0 }; $$i = Get-Item -LiteralPath $$p -Force; if ($$i.Attributes -band [IO.FileAttributes]::ReparsePoint) { exit 2 }; $$o = (Get-Acl -LiteralPath $$p).GetOwner([Security.Principal.SecurityIdentifier]).Value; if (@(${ADMIN_OWNERS}) -contains $$o) { exit 0 }; exit 1"`
  Pop $0
  Pop $1
!macroend
!define DirTrust '!insertmacro _DirTrust'

; Stop with exit code 1 and a message (shown unless /S; always in the log).
!macro _Refuse MSG
  DetailPrint "${MSG}"
  MessageBox MB_ICONSTOP|MB_OK "${MSG}" /SD IDOK
  SetErrorLevel 1
  Quit
!macroend
!define Refuse '!insertmacro _Refuse'

; ${LockDown} DIR GRANTS: Administrators own DIR; only GRANTS remain (inheritance off).
; icacls works on the directory itself (no /T: a junction planted inside is never
; followed); files created in DIR afterwards inherit the grants.
!macro _LockDown DIR GRANTS
  nsExec::ExecToLog '"$SYSDIR\icacls.exe" "${DIR}" /setowner *S-1-5-32-544 /C'
  Pop $0
  ${If} $0 != 0
    ${Refuse} "Could not make Administrators the owner of ${DIR} (icacls exit $0)"
  ${EndIf}
  nsExec::ExecToLog '"$SYSDIR\icacls.exe" "${DIR}" /inheritance:r /grant:r ${GRANTS}'
  Pop $0
  ${If} $0 != 0
    ${Refuse} "Could not set the permissions of ${DIR} (icacls exit $0)"
  ${EndIf}
!macroend
!define LockDown '!insertmacro _LockDown'
!define ADMINS_ONLY "*S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F"
!define ADMINS_USERS_RX "*S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F *S-1-5-32-545:(OI)(CI)RX"

; A data subfolder: owned by Administrators, its own entries replaced by what it inherits.
!macro DataSubdir NAME
  CreateDirectory "${DATA}\${NAME}"
  nsExec::ExecToLog '"$SYSDIR\icacls.exe" "${DATA}\${NAME}" /setowner *S-1-5-32-544 /C'
  Pop $0
  ${If} $0 != 0
    ${Refuse} "Could not make Administrators the owner of ${DATA}\${NAME} (icacls exit $0)"
  ${EndIf}
  nsExec::ExecToLog '"$SYSDIR\icacls.exe" "${DATA}\${NAME}" /reset /C'
  Pop $0
  ${If} $0 != 0
    ${Refuse} "Could not set the permissions of ${DATA}\${NAME} (icacls exit $0)"
  ${EndIf}
!macroend

; ${StrContains} OUT NEEDLE HAYSTACK: OUT = NEEDLE if found, else "".
!macro _StrContains OUT NEEDLE HAYSTACK
  Push `${HAYSTACK}`
  Push `${NEEDLE}`
  !ifdef __UNINSTALL__
    Call un.StrContainsFn
  !else
    Call StrContainsFn
  !endif
  Pop `${OUT}`
!macroend
!define StrContains '!insertmacro _StrContains'
!macro StrContainsFnBody
  Exch $R1 ; needle
  Exch
  Exch $R2 ; haystack
  Push $R3
  Push $R4
  Push $R5
  StrLen $R3 $R1
  StrCpy $R4 0
  ${Do}
    StrCpy $R5 $R2 $R3 $R4
    ${If} $R5 == $R1
      ${Break}
    ${EndIf}
    ${If} $R5 == ""
      StrCpy $R1 ""
      ${Break}
    ${EndIf}
    IntOp $R4 $R4 + 1
  ${Loop}
  Pop $R5
  Pop $R4
  Pop $R3
  Pop $R2
  Exch $R1
!macroend
Function StrContainsFn
  !insertmacro StrContainsFnBody
FunctionEnd
Function un.StrContainsFn
  !insertmacro StrContainsFnBody
FunctionEnd

Function .onInit
  ${IfNot} ${RunningX64}
    MessageBox MB_ICONSTOP|MB_OK "${APP} needs 64-bit Windows." /SD IDOK
    SetErrorLevel 1
    Quit
  ${EndIf}
  SetRegView 64
  SetShellVarContext all
FunctionEnd

Function un.onInit
  SetRegView 64
  SetShellVarContext all
FunctionEnd

Section "${APP}" SecMain
  SectionIn RO
  !insertmacro StopHelper

  ; The install directory: the service's binary runs as LocalSystem, so only
  ; administrators may change it, wherever it is (a /D=D:\Apps\... folder inherits
  ; "Authenticated Users: modify" from the drive's root). Set before any file is copied.
  ${DirTrust} "$INSTDIR"
  ${If} $0 == 2
    ${Refuse} "$INSTDIR is a junction or link: choose another folder"
  ${ElseIf} $0 != 0
    ${Refuse} "$INSTDIR was created by a user who is not an administrator (or its owner cannot be read): choose another folder"
  ${EndIf}
  CreateDirectory "$INSTDIR"
  ${LockDown} "$INSTDIR" "${ADMINS_USERS_RX}"

  ; The helper's directories: SYSTEM and Administrators only (tunnel configs hold keys).
  ; Users may create folders in ProgramData: one created in advance is not ours (ours is
  ; owned by Administrators), so it is moved aside, never trusted or deleted.
  ${DirTrust} "${DATA}"
  ${If} $0 != 0
    System::Call 'kernel32::GetTickCount()i.r2'
    Rename "${DATA}" "${DATA}.untrusted-$2"
    ${If} ${FileExists} "${DATA}\*.*"
      ${Refuse} "${DATA} was created by a user who is not an administrator and could not be moved aside"
    ${EndIf}
    DetailPrint "Moved aside ${DATA} (not created by an administrator) to ${DATA}.untrusted-$2"
  ${EndIf}
  CreateDirectory "${DATA}"
  ${LockDown} "${DATA}" "${ADMINS_ONLY}"
  ; Its subfolders (ours from an earlier install, or new): owned by Administrators,
  ; their own entries replaced by what they inherit from ${DATA}.
  !insertmacro DataSubdir "helper"
  !insertmacro DataSubdir "tunnels"

  SetOutPath "$INSTDIR"
  File /r "${PAYLOAD}\*.*"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  ; The helper's own start check, before the service exists: it also judges the folders
  ; above $INSTDIR (a /D=D:\Apps\Rustronaut whose D:\Apps a user created can be swapped
  ; whole), which the service would otherwise find at every start (exit 5).
  nsExec::ExecToStack '"$INSTDIR\rustronaut-helper.exe" --check-install --state-dir "${DATA}\helper"'
  Pop $0
  Pop $1
  ${If} $0 != 0
    ${Refuse} "Rustronaut cannot run from $INSTDIR (a folder a non-administrator can change; helper exit $0): $1"
  ${EndIf}

  ; The users allowed to call the helper (IT adds them; "exists" is fine on upgrade).
  nsExec::ExecToLog '"$SYSDIR\net.exe" localgroup "${GROUP}" /add /comment:"May use the Rustronaut helper"'
  Pop $0

  ; The helper service: created on first install, reconfigured on upgrade.
  nsExec::ExecToStack '"$SYSDIR\sc.exe" query ${SERVICE}'
  Pop $0
  Pop $2
  StrCpy $4 'binPath= "\"$INSTDIR\rustronaut-helper.exe\" --backend windows --state-dir \"${DATA}\helper\"" start= auto DisplayName= "Rustronaut WireGuard helper"'
  ${If} $0 == 1060
    nsExec::ExecToLog '"$SYSDIR\sc.exe" create ${SERVICE} $4 obj= LocalSystem'
  ${Else}
    nsExec::ExecToLog '"$SYSDIR\sc.exe" config ${SERVICE} $4'
  ${EndIf}
  Pop $0
  ${If} $0 != 0
    DetailPrint "Could not register the ${SERVICE} service (sc.exe exit $0)"
    SetErrorLevel 1
  ${EndIf}
  nsExec::ExecToLog '"$SYSDIR\sc.exe" description ${SERVICE} "Brings the Rustronaut WireGuard tunnel up and down for the tray app."'
  Pop $0
  nsExec::ExecToLog '"$SYSDIR\sc.exe" failure ${SERVICE} reset= 60 actions= restart/1000/restart/5000//'
  Pop $0
  nsExec::ExecToLog '"$SYSDIR\sc.exe" start ${SERVICE}'
  Pop $0

  ; Managed settings: the policy key exists (its unnamed default value carries no
  ; setting); its values belong to IT and are never written or removed here.
  WriteRegStr HKLM "${POLICY_KEY}" "" ""

  CreateShortcut "$SMPROGRAMS\${APP}.lnk" "$INSTDIR\rustronaut-tray.exe" "--show"
  WriteRegStr HKLM "${RUN_KEY}" "${APP}" '"$INSTDIR\rustronaut-tray.exe" --autostart'
  WriteRegStr HKLM "${RUN_KEY}" "${AGENT_RUN}" '"$INSTDIR\rustronaut-tray.exe" agent'

  WriteRegStr HKLM "${UNINST_KEY}" "DisplayName" "${APP}"
  WriteRegStr HKLM "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINST_KEY}" "Publisher" "Rustronaut"
  WriteRegStr HKLM "${UNINST_KEY}" "DisplayIcon" "$INSTDIR\rustronaut-tray.exe"
  WriteRegStr HKLM "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINST_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKLM "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINST_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  WriteRegDWORD HKLM "${UNINST_KEY}" "EstimatedSize" $0
SectionEnd

Section "Uninstall"
  !insertmacro StopHelper
  nsExec::ExecToLog '"$SYSDIR\sc.exe" delete ${SERVICE}'
  Pop $0

  Delete "$SMPROGRAMS\${APP}.lnk"
  DeleteRegValue HKLM "${RUN_KEY}" "${APP}"
  DeleteRegValue HKLM "${RUN_KEY}" "${AGENT_RUN}"
  ; Only what we installed: never RMDir /r an arbitrary /D= directory.
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\rustronaut-tray.exe"
  Delete "$INSTDIR\rustronaut.exe"
  Delete "$INSTDIR\rustronaut-helper.exe"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKLM "${UNINST_KEY}"

  ; Kept unless /PURGE: the helper's state (device identity, tunnel configs) and the
  ; group. Never removed: the policy key's values (IT's; Group Policy/Intune own them)
  ; and each user's own settings in %APPDATA%\Rustronaut.
  ${GetParameters} $R0
  ClearErrors
  ${GetOptions} $R0 "/PURGE" $R1
  ${IfNot} ${Errors}
    RMDir /r "${DATA}"
    nsExec::ExecToLog '"$SYSDIR\net.exe" localgroup "${GROUP}" /delete'
    Pop $0
  ${EndIf}
SectionEnd
