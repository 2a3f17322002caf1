Attribute VB_Name = "CrmRibbon"
' crmsync ribbon callback. Source: templates/vba/CrmRibbon.bas; built into crm_workbook.xlsm
' by crmsync/build.py. Keep this file ASCII: VBA source is stored in the project's code page.
'
' Every button of the CRM ribbon tab (templates/ribbon/customUI14.xml) calls this one Sub.
' It only hands the button id to Python; crmsync.macros.on_ribbon checks the id against its
' whitelist (crmsync.macros.ACTIONS) and runs the action. RunPython comes from the xlwings
' module; its command is wrapped in double quotes, so the Python inside uses single quotes.
Option Explicit

Public Sub CrmRibbonClick(control As IRibbonControl)
    RunPython "import crmsync.macros as m; m.on_ribbon('" & control.Id & "')"
End Sub
